import ArgumentParser

// Ctrl-C, SIGTERM and a file-size limit never leave a partial or temporary file.
installSignalHandlers()

/// ArgumentParser's own entry point, except that the help of a command with
/// generated options (`GeneratedOptionsCommand`) lists them after its own.
let arguments = Array(CommandLine.arguments.dropFirst())
do {
    var command = try Compressor.parseAsRoot(arguments)
    try command.run()
} catch {
    if Compressor.exitCode(for: error) == .success,
       let name = arguments.first(where: { !$0.hasPrefix("-") && $0 != "help" }),
       let command = Compressor.configuration.subcommands.first(where: { $0._commandName == name }),
       let generated = command as? any GeneratedOptionsCommand.Type {
        print(Compressor.fullMessage(for: error).trimmingCharacters(in: .newlines) + "\n\n" + generated.generatedOptions.help)
        Compressor.exit()
    }
    Compressor.exit(withError: error)
}

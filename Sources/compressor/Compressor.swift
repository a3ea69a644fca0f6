import ArgumentParser
import Compress

@main
struct Compressor: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "compressor",
        abstract: "Compress and accelerate convolutional neural networks.",
        version: "0.1.0",
        subcommands: []
    )
}

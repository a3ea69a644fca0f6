import ArgumentParser
import Compress
import Prune

struct HuffmanCommand: GeneratedOptionsCommand {
    static let configuration = passCommandConfiguration(HuffmanPass.self)
    static var generatedOptions: GeneratedOptions { .forPass(HuffmanPass.self) }

    @OptionGroup var io: PassIOOptions

    func validate() throws { _ = try io.passArguments(HuffmanPass.self) }

    func run() throws { try runPass(HuffmanPass.self, options: io) }
}

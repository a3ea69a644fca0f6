import ArgumentParser
import Compress

struct FoldBNCommand: GeneratedOptionsCommand {
    static let configuration = passCommandConfiguration(FoldBatchNormPass.self)
    static var generatedOptions: GeneratedOptions { .forPass(FoldBatchNormPass.self) }

    @OptionGroup var io: PassIOOptions

    func validate() throws { _ = try io.passArguments(FoldBatchNormPass.self) }

    func run() throws { try runPass(FoldBatchNormPass.self, options: io) }
}

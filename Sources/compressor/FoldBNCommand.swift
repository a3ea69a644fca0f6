import ArgumentParser
import Compress

struct FoldBNCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: FoldBatchNormPass.name,
        abstract: FoldBatchNormPass.summary)

    @OptionGroup var io: PassIOOptions

    @Option(name: .customLong("verify"), help: passOptionHelp(FoldBatchNormPass.self, "verify"))
    var verify: String?

    @Option(name: .customLong("verify-batch"), help: passOptionHelp(FoldBatchNormPass.self, "verify-batch"))
    var verifyBatch: String?

    func run() throws {
        try runPass(FoldBatchNormPass.self, options: io, given: ["verify": verify, "verify-batch": verifyBatch])
    }
}

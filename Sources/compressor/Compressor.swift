import ArgumentParser
import Compress
import Prune
import LowRank
import Distill

struct Compressor: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "compressor",
        abstract: "Compress and accelerate convolutional neural networks.",
        discussion: """
        Models are files in compressor's native format (.bin). Every command that \
        reads a model refuses truncated, corrupt or foreign files with one clear \
        message, and every command that writes one writes it atomically.
        """,
        version: "0.1.0",
        subcommands: [InitCommand.self, InfoCommand.self, EvalCommand.self, BenchCommand.self,
                      PredictCommand.self, TrainCommand.self, FinetuneCommand.self, FoldBNCommand.self, PruneCommand.self,
                      ShareCommand.self, HuffmanCommand.self, HashCommand.self, QuantizeCommand.self, LowRankCommand.self,
                      DistillCommand.self, SensitivityCommand.self, ConvertCommand.self,
                      RunCommand.self, ReportCommand.self]
    )

    /// Every pass the CLI and pipelines know, from every pass library.
    static let registry = PassRegistry(PassRegistry.corePasses + PruneLibrary.passes
                                       + LowRankLibrary.passes + DistillLibrary.passes)
}

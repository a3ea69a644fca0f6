import ArgumentParser
import Compress
import Prune

struct PruneCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: PrunePass.name,
        abstract: PrunePass.summary,
        discussion: """
        Give one amount: --sparsity, --threshold-std, --layer-sparsity, --sensitivity, \
        --target-macs or --target-latency.

        Weight granularity zeroes single weights by magnitude (Han et al. 2015); the file \
        stores them sparsely, and fine-tuning (--finetune-epochs, needs --data or the \
        default Fashion-MNIST) holds pruned weights at exactly zero. Channel granularity \
        removes whole channels through the graph's channel dependency groups (residual \
        Adds, Concat, Flatten and depthwise convs handled), giving a smaller dense model \
        that is faster in any runtime.

        Examples (the recipes measured in docs/pruning.md):
          compressor prune models/lenet300.bin -o sparse.bin \\
              --sparsity 0.92 --scope global --schedule agp --steps 6 \\
              --finetune-epochs 3 --finetune-lr 0.1
          compressor prune models/vgg-small.bin -o slim.bin \\
              --granularity channel --target-macs 0.4 --round-to 8 \\
              --finetune-epochs 10 --finetune-lr 0.02 \\
              --finetune-crop-padding 2 --finetune-flip
        """)

    @OptionGroup var io: PassIOOptions

    @Option(name: .customLong("granularity"), help: passOptionHelp(PrunePass.self, "granularity"))
    var granularity: String?
    @Option(name: .customLong("criterion"), help: passOptionHelp(PrunePass.self, "criterion"))
    var criterion: String?
    @Option(name: .customLong("scope"), help: passOptionHelp(PrunePass.self, "scope"))
    var scope: String?
    @Option(name: .customLong("sparsity"), help: passOptionHelp(PrunePass.self, "sparsity"))
    var sparsity: String?
    @Option(name: .customLong("threshold-std"), help: passOptionHelp(PrunePass.self, "threshold-std"))
    var thresholdStd: String?
    @Option(name: .customLong("layer-sparsity"), help: passOptionHelp(PrunePass.self, "layer-sparsity"))
    var layerSparsity: String?
    @Option(name: .customLong("sensitivity"), help: passOptionHelp(PrunePass.self, "sensitivity"))
    var sensitivity: String?
    @Option(name: .customLong("max-accuracy-drop"), help: passOptionHelp(PrunePass.self, "max-accuracy-drop"))
    var maxAccuracyDrop: String?
    @Option(name: .customLong("target-macs"), help: passOptionHelp(PrunePass.self, "target-macs"))
    var targetMACs: String?
    @Option(name: .customLong("target-latency"), help: passOptionHelp(PrunePass.self, "target-latency"))
    var targetLatency: String?
    @Option(name: .customLong("schedule"), help: passOptionHelp(PrunePass.self, "schedule"))
    var schedule: String?
    @Option(name: .customLong("steps"), help: passOptionHelp(PrunePass.self, "steps"))
    var steps: String?
    @Option(name: .customLong("finetune-epochs"), help: passOptionHelp(PrunePass.self, "finetune-epochs"))
    var finetuneEpochs: String?
    @Option(name: .customLong("finetune-lr"), help: passOptionHelp(PrunePass.self, "finetune-lr"))
    var finetuneLR: String?
    @Option(name: .customLong("layers"), help: passOptionHelp(PrunePass.self, "layers"))
    var layers: String?
    @Option(name: .customLong("exclude"), help: passOptionHelp(PrunePass.self, "exclude"))
    var exclude: String?
    @Option(name: .customLong("round-to"), help: passOptionHelp(PrunePass.self, "round-to"))
    var roundTo: String?
    @Option(name: .customLong("calibration-images"), help: passOptionHelp(PrunePass.self, "calibration-images"))
    var calibrationImages: String?

    func run() throws {
        try runPass(PrunePass.self, options: io, given: [
            "granularity": granularity, "criterion": criterion, "scope": scope, "sparsity": sparsity,
            "threshold-std": thresholdStd, "layer-sparsity": layerSparsity, "sensitivity": sensitivity,
            "max-accuracy-drop": maxAccuracyDrop, "target-macs": targetMACs, "target-latency": targetLatency,
            "schedule": schedule, "steps": steps, "finetune-epochs": finetuneEpochs, "finetune-lr": finetuneLR,
            "layers": layers, "exclude": exclude, "round-to": roundTo, "calibration-images": calibrationImages,
        ])
    }
}

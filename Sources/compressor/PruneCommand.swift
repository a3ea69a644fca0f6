import ArgumentParser
import Compress
import Prune

struct PruneCommand: GeneratedOptionsCommand {
    static var generatedOptions: GeneratedOptions { .forPass(PrunePass.self) }
    static let configuration = passCommandConfiguration(PrunePass.self, discussion: """
        Give one amount: --sparsity, --threshold-std, --layer-sparsity, --sensitivity, \
        --target-macs or --target-latency.

        Weight granularity zeroes single weights by magnitude (Han et al. 2015); the file \
        stores them sparsely, and fine-tuning (--finetune-epochs, needs --data or the \
        default Fashion-MNIST) holds pruned weights at exactly zero. Channel granularity \
        removes whole channels through the graph's channel dependency groups (residual \
        Adds, Concat, Flatten, depthwise convs, slices and channel shuffles handled), \
        giving a smaller dense model that is faster in any runtime.

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

    func validate() throws { _ = try io.passArguments(PrunePass.self) }

    func run() throws { try runPass(PrunePass.self, options: io) }
}

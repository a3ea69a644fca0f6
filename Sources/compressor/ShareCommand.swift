import ArgumentParser
import Compress
import Prune

struct ShareCommand: GeneratedOptionsCommand {
    static var generatedOptions: GeneratedOptions { .forPass(SharePass.self) }
    static let configuration = passCommandConfiguration(SharePass.self, discussion: """
        Clusters each conv/linear weight's non-zero values by k-means into 2^bits \
        centroids (2^bits - 1 when the layer has zeros, so zero keeps one code) and \
        replaces every weight by its centroid; zeros stay zero. Fine-tuning \
        (--finetune-epochs, needs --data or the default Fashion-MNIST) moves each \
        centroid by its members' summed gradient, so the layer keeps its codebook.

        Example (Deep Compression, after pruning):
          compressor share sparse.bin -o shared.bin --conv-bits 8 --fc-bits 5 \\
              --finetune-epochs 2 --finetune-lr 0.01
        """)

    @OptionGroup var io: PassIOOptions

    func validate() throws { _ = try io.passArguments(SharePass.self) }

    func run() throws { try runPass(SharePass.self, options: io) }
}

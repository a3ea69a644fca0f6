import ArgumentParser
import Compress
import Prune

struct HashCommand: GeneratedOptionsCommand {
    static var generatedOptions: GeneratedOptions { .forPass(HashPass.self) }
    static let configuration = passCommandConfiguration(HashPass.self, discussion: """
        HashedNets (Chen et al., ICML 2015): each selected linear layer's weight \
        matrix becomes virtual, every weight w_i = s(i) * bucket[h(i)] drawn from a \
        bucket vector --compression times smaller by a seeded hash h with a sign \
        hash s. The file stores the buckets and the seed; biases stay dense. The \
        buckets start as the least-squares fit of the current weights (--init \
        project) or one signed member each (--init sample, to train from scratch). \
        Fine-tuning (--finetune-epochs, or a later `finetune`) moves each bucket by \
        the signed sum of its virtual weights' gradients, so the layer stays hashed.

        Example (8x fewer stored weights in every linear layer, then fine-tuning;
        docs/hashednets.md measures it on LeNet-300-100: 7.8x smaller, -0.8 points):
          compressor hash lenet300.bin -o hashed.bin --compression 8 \\
              --finetune-epochs 15 --finetune-lr 0.01 --finetune-weight-decay 0.004
        """)

    @OptionGroup var io: PassIOOptions

    func validate() throws { _ = try io.passArguments(HashPass.self) }

    func run() throws { try runPass(HashPass.self, options: io) }
}

import ArgumentParser
import Compress
import LowRank

struct LowRankCommand: GeneratedOptionsCommand {
    static var generatedOptions: GeneratedOptions { .forPass(LowRankPass.self) }
    static let configuration = passCommandConfiguration(LowRankPass.self, discussion: """
        Replaces each selected layer by the chain of smaller layers of its low-rank \
        factorization: svd for linear layers (n -> r -> m); channel (k x k conv to r \
        channels, then 1x1), spatial (k x 1 then 1 x k), tucker2 (1x1, k x k core, 1x1), \
        cp (1x1, depthwise k x 1, depthwise 1 x k, 1x1) or separable (depthwise k x k \
        with depth multiplier --rank, then 1x1) for convolutions. Give --rank, \
        --energy (the fraction of squared singular values kept), --layer-rank \
        (tucker2 also INPUTxOUTPUT, e.g. conv3=16x24), --rank-selection vbmf \
        (ranks estimated by empirical VBMF), or a whole-model --target-macs / \
        --target-latency (ranks chosen per layer, least reconstruction error per MAC \
        or ms saved; --latency-table keeps the measurements). The last factor keeps the layer's bias and output, so \
        BatchNorm, ReLU and residual Adds after it are untouched. Layers whose \
        factors would not be smaller, and sparse, shared, hashed or quantized \
        layers, are left as they are; the record says which and why. Fine-tuning \
        (--finetune-epochs, needs --data or the default Fashion-MNIST) trains every factor.

        Examples (the runs measured in docs/lowrank.md):
          compressor lowrank models/lenet300.bin -o lr.bin --method svd --energy 0.8 \\
              --finetune-epochs 3 --finetune-lr 0.01
          compressor lowrank models/lenet5.bin -o lr.bin --method svd --layers 'fc*' \\
              --layer-rank 'fc1=32' --round-to 8
          compressor lowrank models/vgg-small.bin -o lr.bin \\
              --method tucker2 --energy 0.9
          compressor lowrank models/vgg-small.bin -o lr.bin --method tucker2 \\
              --target-latency 0.5 --latency-table vgg-latency.json
          compressor lowrank models/vgg-small.bin -o lr.bin \\
              --method tucker2 --rank-selection vbmf --layer-rank 'conv1=1x16'
          compressor lowrank models/vgg-small.bin -o lr.bin --method separable --rank 2
        """)

    @OptionGroup var io: PassIOOptions

    func validate() throws { _ = try io.passArguments(LowRankPass.self) }

    func run() throws { try runPass(LowRankPass.self, options: io) }
}

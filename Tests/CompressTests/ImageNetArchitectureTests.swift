import Testing
@testable import Compress

/// The ImageNet-shaped built-ins, `resnet18` and `mobilenetv2`, against
/// torchvision's models and the papers' multiply-add counts.
@Suite struct ImageNetArchitectureTests {
    static let resnet18 = Architecture.resnet18.build(seed: 1)
    static let mobilenetv2 = Architecture.mobilenetv2.build(seed: 1)

    /// Parameters as PyTorch counts them: initializers without batch norm's
    /// running statistics (`.mean`, `.var`: buffers, not parameters, in PyTorch).
    static func torchParameterCount(_ model: Model) -> Int {
        model.graph.initializers.filter { !$0.key.hasSuffix(".mean") && !$0.key.hasSuffix(".var") }
            .reduce(0) { $0 + $1.value.count }
    }

    /// Batch norm channels: each has a running mean and variance.
    static func batchNormChannels(_ model: Model) -> Int {
        model.graph.initializers.filter { $0.key.hasSuffix(".mean") }.reduce(0) { $0 + $1.value.count }
    }

    @Test func parameterCountsEqualTorchvision() {
        // sum(p.numel() for p in torchvision.models.resnet18().parameters()), likewise mobilenet_v2().
        #expect(Self.torchParameterCount(Self.resnet18) == 11_689_512)
        #expect(Self.torchParameterCount(Self.mobilenetv2) == 3_504_872)
        // Our count adds the running statistics: 4,800 and 17,056 batch norm channels.
        #expect(Self.batchNormChannels(Self.resnet18) == 4_800)
        #expect(Self.batchNormChannels(Self.mobilenetv2) == 17_056)
        #expect(Self.resnet18.graph.parameterCount == 11_689_512 + 2 * 4_800)
        #expect(Self.mobilenetv2.graph.parameterCount == 3_504_872 + 2 * 17_056)
    }

    @Test func macsMatchThePapers() throws {
        // He et al. 2016, Table 1: 1.8 x 10^9 multiply-adds; Sandler et al. 2018, Table 4: 300M.
        // The papers give two significant digits, so a count within half a unit of the
        // last digit matches: 1.8G +- 0.05G and 300M +- 5M.
        let resnet = try Self.resnet18.graph.macsPerSample()
        let mobile = try Self.mobilenetv2.graph.macsPerSample()
        #expect(abs(Double(resnet) - 1.8e9) <= 0.05e9)
        #expect(abs(Double(mobile) - 300e6) <= 5e6)
        // The exact counts, the same as `compressor info` gives for torchvision's models
        // exported to ONNX (padding positions counted, the fc layer included).
        #expect(resnet == 1_814_073_344)
        #expect(mobile == 300_774_272)
        // ResNet-18's stem: 112·112 outputs x 64 channels x 3·7·7 taps.
        #expect(try Self.resnet18.graph.costReport().macsByNode["conv1"] == 112 * 112 * 64 * 147)
    }

    @Test func resNet18Structure() throws {
        let g = Self.resnet18.graph
        let shapes = try g.inferShapes(batch: 2)
        #expect(shapes["conv1"] == [2, 64, 112, 112])
        #expect(shapes["pool1"] == [2, 64, 56, 56])
        #expect(shapes["layer1.1.relu2"] == [2, 64, 56, 56])
        #expect(shapes["layer2.1.relu2"] == [2, 128, 28, 28])
        #expect(shapes["layer3.1.relu2"] == [2, 256, 14, 14])
        #expect(shapes["layer4.1.relu2"] == [2, 512, 7, 7])
        #expect(shapes["fc"] == [2, 1000])
        #expect(g.initializers["conv1.weight"]?.shape == [64, 3, 7, 7])
        #expect(g.initializers["layer4.0.shortcut.conv.weight"]?.shape == [512, 256, 1, 1])
        #expect(g.nodeIndex(named: "layer1.0.shortcut.conv") == nil)
        // 1 stem + 16 block convs + 3 projections; 8 residual additions.
        #expect(g.nodes.filter { if case .conv2d = $0.op { true } else { false } }.count == 20)
        #expect(g.nodes.filter { if case .add = $0.op { true } else { false } }.count == 8)
        let pool = try #require(g.producer(of: "pool1"))
        #expect(pool.op == .maxPool(Pool2d(kernel: .square(3), stride: .square(2), padding: .same(1))))
    }

    @Test func mobileNetV2Structure() throws {
        let g = Self.mobilenetv2.graph
        let shapes = try g.inferShapes(batch: 2)
        #expect(shapes["conv1"] == [2, 32, 112, 112])
        #expect(shapes["block1.bn3"] == [2, 16, 112, 112])
        #expect(shapes["block3.add"] == [2, 24, 56, 56])
        #expect(shapes["block6.add"] == [2, 32, 28, 28])
        #expect(shapes["block10.add"] == [2, 64, 14, 14])
        #expect(shapes["block13.add"] == [2, 96, 14, 14])
        #expect(shapes["block16.add"] == [2, 160, 7, 7])
        #expect(shapes["block17.bn3"] == [2, 320, 7, 7])
        #expect(shapes["conv2"] == [2, 1280, 7, 7])
        #expect(shapes["fc"] == [2, 1000])
        // Block 1 (t = 1) has no expansion; block 2 expands 16 to 96, then depthwise stride 2.
        #expect(g.nodeIndex(named: "block1.expand") == nil)
        #expect(g.initializers["block2.expand.weight"]?.shape == [96, 16, 1, 1])
        #expect(g.initializers["block2.dw.weight"]?.shape == [96, 1, 3, 3])
        #expect(shapes["block2.dw"] == [2, 96, 56, 56])
        // Residuals where stride is 1 and channels are equal: n - 1 per row of Table 2 after the first.
        #expect(g.nodes.filter { if case .add = $0.op { true } else { false } }.count == 10)
        #expect(g.producer(of: "block3.add")?.inputs == ["block2.bn3", "block3.bn3"])
        // 1 stem + 1 + 2 (block 1) + 16 x 3 + the 1x1 conv 1280 = 52 convolutions, every activation ReLU6,
        // none after a projection.
        #expect(g.nodes.filter { if case .conv2d = $0.op { true } else { false } }.count == 52)
        #expect(g.nodes.filter { $0.op == .relu }.isEmpty)
        #expect(g.nodes.filter { $0.op == .relu6 }.count == 35)
        for node in g.nodes where node.name.hasSuffix(".bn3") {
            #expect(g.nodes.allSatisfy { !($0.inputs.first == node.name && $0.op == .relu6) }, "\(node.name)")
        }
    }

    @Test func widthsRoundToMultiplesOfEight() throws {
        let half = Architecture.mobilenetv2.build(seed: 1, width: 0.5)
        #expect(half.graph.initializers["conv1.weight"]?.shape == [16, 3, 3, 3])
        #expect(half.graph.initializers["block1.project.weight"]?.shape == [8, 16, 1, 1])
        #expect(half.graph.initializers["block2.expand.weight"]?.shape == [48, 8, 1, 1])
        #expect(half.graph.initializers["conv2.weight"]?.shape == [640, 160, 1, 1])
        let resnet = Architecture.resnet18.build(seed: 1, width: 0.25)
        #expect(resnet.graph.initializers["layer4.1.conv2.weight"]?.shape == [128, 128, 3, 3])
        #expect(try resnet.graph.inferShapes(batch: 1)["fc"] == [1, 1000])
    }

    @Test func forwardRunIsFiniteAndBatchIndependent() throws {
        // One 224x224 image, alone and as the second of a batch of two: the same logits.
        for model in [Self.resnet18, Self.mobilenetv2] {
            var rng = SeededGenerator(seed: 3)
            let pair = rng.uniformTensor([2, 3, 224, 224])
            let second = Tensor(shape: [1, 3, 224, 224], floats: Array(pair.floats[(3 * 224 * 224)...]))
            let session = try Session(model: model)
            let both = try session.run(pair), alone = try session.run(second)
            #expect(both.shape == [2, 1000] && alone.shape == [1, 1000])
            #expect(alone.floats.allSatisfy { $0.isFinite })
            #expect(Set(alone.floats).count > 900, "logits of random weights differ")
            expectClose(Tensor(shape: [1, 1000], floats: Array(both.floats[1000...])), alone, tolerance: 1e-4)
        }
    }
}

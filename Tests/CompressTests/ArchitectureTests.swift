import Foundation
import Testing
@testable import Compress

@Suite struct ArchitectureTests {
    @Test func leNetParameterCounts() {
        // 784·300 + 300 + 300·100 + 100 + 100·10 + 10
        #expect(Architecture.lenet300.build(seed: 1).graph.parameterCount == 266_610)
        // conv1 20·25 + 20, conv2 50·20·25 + 50, fc1 800·500 + 500, fc2 500·10 + 10
        #expect(Architecture.lenet5.build(seed: 1).graph.parameterCount == 431_080)
    }

    @Test func vggSmallParameterCount() {
        // Convs 9·(1·32 + 32·32 + 32·64 + 64·64 + 64·128 + 128·128) = 285,984;
        // BN 4·(32 + 32 + 64 + 64 + 128 + 128) = 1,792; fc 128·10 + 10 = 1,290.
        #expect(Architecture.vggSmall.build(seed: 1).graph.parameterCount == 289_066)
    }

    @Test(arguments: Architecture.allCases) func outputShape(architecture: Architecture) throws {
        let model = architecture.build(seed: 7)
        let shapes = try model.graph.inferShapes(batch: 5)
        #expect(model.graph.outputs.count == 1)
        let imageNet = architecture == .resnet18 || architecture == .mobilenetv2
        #expect(shapes[model.graph.outputs[0]] == [5, imageNet ? 1000 : 10])
        #expect(model.inputShape == (imageNet ? [3, 224, 224] : [1, 28, 28]))
        #expect(model.inputShape == architecture.defaultInputShape && architecture.defaultClasses == (imageNet ? 1000 : 10))
        #expect(model.metadata.architecture == architecture.rawValue)
        if imageNet {
            #expect(model.metadata.classNames == (0..<1000).map(String.init))
            #expect(model.metadata.normalization == Normalization(mean: [0.485, 0.456, 0.406], std: [0.229, 0.224, 0.225]))
        } else {
            #expect(model.metadata.classNames == DatasetLoader.fashionMNISTClassNames)
            #expect(model.metadata.normalization == Normalization(mean: [0.2860], std: [0.3530]))
        }
        let history = try #require(model.metadata.history.first)
        #expect(history.pass == "init" && history.seed == 7 && history.parameters == ["arch": architecture.rawValue])
        #expect(history.metrics["params"] == Double(model.graph.parameterCount))
        #expect(Architecture(rawValue: architecture.rawValue) == architecture)
    }

    @Test(arguments: Architecture.allCases) func otherInputShapesAndClassCounts(architecture: Architecture) throws {
        let model = architecture.build(seed: 3, inputShape: [3, 32, 32], classes: 7)
        let shapes = try model.graph.inferShapes(batch: 2)
        #expect(shapes[model.graph.outputs[0]] == [2, 7])
        #expect(model.metadata.classNames == ["0", "1", "2", "3", "4", "5", "6"])
        #expect(model.metadata.normalization?.mean.count == 3)
    }

    @Test func lenet300FlattenSizeFollowsTheInput() {
        let g = Architecture.lenet300.build(seed: 1, inputShape: [2, 10, 10]).graph
        #expect(g.initializers["fc1.weight"]?.shape == [300, 200])
    }

    @Test func vggSmallMACs() throws {
        // Per sample, 28x28 input, pools 28 → 14 → 7 → 3:
        //   conv1 28·28·32·1·9     =   225,792
        //   conv2 28·28·32·32·9    = 7,225,344
        //   conv3 14·14·64·32·9    = 3,612,672
        //   conv4 14·14·64·64·9    = 7,225,344
        //   conv5  7·7·128·64·9    = 3,612,672
        //   conv6  7·7·128·128·9   = 7,225,344
        //   fc    128·10           =     1,280
        //   total                  = 29,128,448
        let report = try Architecture.vggSmall.build(seed: 1).graph.costReport()
        #expect(report.totalMACs == 29_128_448)
        #expect(report.macsByNode["conv2"] == 7_225_344)
        #expect(report.macsByNode["bn2"] == 0 && report.macsByNode["pool1"] == 0)
        #expect(report.totalParameters == 289_066)
    }

    @Test func leNetMACs() throws {
        // lenet300: the MACs are the weights.
        #expect(try Architecture.lenet300.build(seed: 1).graph.macsPerSample() == 266_200)
        // lenet5: conv1 24·24·20·25 = 288,000; conv2 8·8·50·20·25 = 1,600,000;
        // fc1 800·500 = 400,000; fc2 5,000.
        #expect(try Architecture.lenet5.build(seed: 1).graph.macsPerSample() == 2_293_000)
    }

    @Test func depthwiseMACsUseGroups() throws {
        let report = try Architecture.mobilenetSmall.build(seed: 1).graph.costReport()
        // block1.dw: 16 channels, stride 2 → 14x14, one 3x3 filter per channel.
        #expect(report.macsByNode["block1.dw"] == 14 * 14 * 16 * 9)
        #expect(report.nodes.first { $0.name == "block1.dw" }?.outputShape == [1, 16, 14, 14])
        #expect(report.macsByNode["block1.pw"] == 14 * 14 * 32 * 16)
    }

    @Test func resNet20Structure() throws {
        let g = Architecture.resnet20.build(seed: 1).graph
        let shapes = try g.inferShapes(batch: 1)
        #expect(shapes["layer1.2.relu2"] == [1, 16, 28, 28])
        #expect(shapes["layer2.0.relu2"] == [1, 32, 14, 14])
        #expect(shapes["layer3.2.relu2"] == [1, 64, 7, 7])
        #expect(g.initializers["layer2.0.shortcut.conv.weight"]?.shape == [32, 16, 1, 1])
        #expect(g.initializers["layer3.0.shortcut.bn.mean"]?.shape == [64])
        #expect(g.nodeIndex(named: "layer1.0.shortcut.conv") == nil)
        #expect(g.nodeIndex(named: "layer2.1.shortcut.conv") == nil)
        #expect(g.nodes.filter { if case .add = $0.op { true } else { false } }.count == 9)
        // 19 convolutions and the fc layer, plus two projection shortcuts.
        #expect(g.nodes.filter { if case .conv2d = $0.op { true } else { false } }.count == 21)
        #expect(g.producer(of: "layer2.0.add")?.inputs == ["layer2.0.bn2", "layer2.0.shortcut.bn"])
        #expect(g.producer(of: "layer2.1.add")?.inputs == ["layer2.1.bn2", "layer2.0.relu2"])
    }

    @Test func namingAndInitialState() {
        let g = Architecture.vggSmall.build(seed: 1).graph
        #expect(g.initializers["conv1.bias"] == nil, "convs before BN have no bias")
        #expect(g.initializers["bn1.scale"] == .filled([32], with: 1))
        #expect(g.initializers["bn1.bias"] == .zeros([32]))
        #expect(g.initializers["bn1.mean"] == .zeros([32]))
        #expect(g.initializers["bn1.var"] == .filled([32], with: 1))
        #expect(g.initializers["fc.bias"] == .zeros([10]))
        for node in g.nodes {
            if case .batchNorm(let epsilon) = node.op { #expect(epsilon == 1e-5) }
            for input in node.inputs where g.initializers[input] != nil {
                #expect(input.hasPrefix(node.name + "."), "initializer \(input) belongs to \(node.name)")
            }
        }
        let lenet5 = Architecture.lenet5.build(seed: 1).graph
        #expect(lenet5.nodes.map(\.name) == ["conv1", "pool1", "conv2", "pool2", "flatten", "fc1", "relu1", "fc2"])
    }

    @Test(arguments: Architecture.allCases) func seedsAreDeterministic(architecture: Architecture) {
        let a = architecture.build(seed: 42), b = architecture.build(seed: 42), c = architecture.build(seed: 43)
        #expect(a == b)
        #expect(a.graph.initializers != c.graph.initializers)
    }

    @Test func heInitializationStandardDeviation() throws {
        // lenet300 fc1 is [300, 784]: 235,200 samples of N(0, 2/784).
        let w = try #require(Architecture.lenet300.build(seed: 5).graph.initializers["fc1.weight"]).floats
        let mean = w.reduce(0.0) { $0 + Double($1) } / Double(w.count)
        let std = (w.reduce(0.0) { $0 + (Double($1) - mean) * (Double($1) - mean) } / Double(w.count)).squareRoot()
        let expected = (2.0 / 784).squareRoot()
        #expect(abs(mean) < 0.01 * expected * 10)
        #expect(abs(std / expected - 1) < 0.01)
        // A depthwise conv's fan-in is its 3x3 window only.
        let dw = try #require(Architecture.mobilenetSmall.build(seed: 5).graph.initializers["block4.dw.weight"]).floats
        let dwStd = (dw.reduce(0.0) { $0 + Double($1) * Double($1) } / Double(dw.count)).squareRoot()
        #expect(abs(dwStd / (2.0 / 9).squareRoot() - 1) < 0.15)
    }
}

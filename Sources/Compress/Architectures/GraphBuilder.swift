import Foundation

/// Builds a sequential-with-branches graph layer by layer, tracking the shape
/// of the current value so layer widths (a flatten's size, a convolution's
/// input channels) come from shape arithmetic, never from constants.
///
/// Node and output value share a name; weights are initializers named
/// `<node>.weight`, `<node>.bias`, and for batch norm `<node>.scale`,
/// `<node>.bias`, `<node>.mean`, `<node>.var`. Weights are drawn from one
/// seeded generator in construction order, so a seed fixes every byte.
struct GraphBuilder {
    let inputName: String
    let inputShape: [Int]
    private(set) var nodes: [Node] = []
    private(set) var initializers: [String: Tensor] = [:]
    /// Shape of each value for one sample, batch dimension included (batch 1).
    private(set) var shapes: [String: [Int]] = [:]
    /// The value the next layer reads by default.
    var current: String
    var generator: SeededGenerator
    /// The width multiplier hidden layers' channel counts go through (``scaled(_:)``).
    let width: Double

    init(inputName: String = "input", sampleShape: [Int], seed: UInt64, width: Double = 1) {
        self.inputName = inputName
        self.inputShape = sampleShape
        self.width = width
        self.current = inputName
        self.generator = SeededGenerator(seed: seed)
        shapes[inputName] = [1] + sampleShape
    }

    /// A hidden layer's channel (or feature) count at this builder's width:
    /// ``Architecture/scaledChannels(_:width:)``.
    func scaled(_ channels: Int) -> Int { Architecture.scaledChannels(channels, width: width) }

    /// Shape of `value` for a batch of one (`current` when nil).
    func shape(of value: String? = nil) -> [Int] { shapes[value ?? current]! }

    /// He (Kaiming) normal initialization, fan-in mode: N(0, 2 / fan_in).
    /// He et al., "Delving Deep into Rectifiers", ICCV 2015.
    mutating func heNormal(_ shape: [Int], fanIn: Int) -> Tensor {
        generator.gaussianTensor(shape, std: (2 / Float(fanIn)).squareRoot())
    }

    /// Appends a node reading `inputs` (default: `current`) and makes its output current.
    @discardableResult
    mutating func add(_ name: String, _ op: Op, inputs: [String]? = nil, weights: [(String, Tensor)] = []) -> String {
        var nodeInputs = inputs ?? [current]
        for (suffix, tensor) in weights {
            let key = "\(name).\(suffix)"
            initializers[key] = tensor
            shapes[key] = tensor.shape
            nodeInputs.append(key)
        }
        let node = Node(name: name, op: op, inputs: nodeInputs, output: name)
        // Builders only make well-formed layers; a failure here is a bug in an architecture.
        do {
            shapes[name] = try node.outputShape(inputShapes: nodeInputs.map { shapes[$0]! })
        } catch {
            preconditionFailure("building \(name): \(error)")
        }
        nodes.append(node)
        current = name
        return name
    }

    /// A 2-D convolution with He-initialized weights `[out, C/groups, k, k]`
    /// and, when `bias`, a zero bias.
    @discardableResult
    mutating func conv(_ name: String, out: Int, kernel: Int, stride: Int = 1, padding: Int = 0,
                       groups: Int = 1, bias: Bool = true, from input: String? = nil) -> String {
        let inChannels = shape(of: input)[1]
        let perGroup = inChannels / groups
        var weights = [("weight", heNormal([out, perGroup, kernel, kernel], fanIn: perGroup * kernel * kernel))]
        if bias { weights.append(("bias", .zeros([out]))) }
        let attributes = Conv2d(stride: .square(stride), padding: .same(padding), groups: groups)
        return add(name, .conv2d(attributes), inputs: [input ?? current], weights: weights)
    }

    /// Batch normalization at its initial state: scale 1, bias 0, mean 0, variance 1.
    @discardableResult
    mutating func batchNorm(_ name: String, epsilon: Float = 1e-5) -> String {
        let c = shape()[1]
        return add(name, .batchNorm(epsilon: epsilon), weights: [
            ("scale", .filled([c], with: 1)), ("bias", .zeros([c])),
            ("mean", .zeros([c])), ("var", .filled([c], with: 1)),
        ])
    }

    /// A fully connected layer `[out, in]` with He-initialized weights and a zero bias.
    @discardableResult
    mutating func linear(_ name: String, out: Int) -> String {
        let inFeatures = shape()[1]
        return add(name, .linear, weights: [
            ("weight", heNormal([out, inFeatures], fanIn: inFeatures)), ("bias", .zeros([out])),
        ])
    }

    /// The finished model: the current value is the graph's output.
    func model(architecture: Architecture, seed: UInt64, classes: Int) -> Model {
        let graph = Graph(inputs: [GraphInput(name: inputName, sampleShape: inputShape)], outputs: [current],
                          nodes: nodes, initializers: initializers)
        var metrics: [String: Double] = ["params": Double(graph.parameterCount)]
        if let cost = try? graph.costReport() { metrics["macs"] = Double(cost.totalMACs) }
        let channels = inputShape.first ?? 1
        let metadata = ModelMetadata(
            architecture: architecture.rawValue,
            normalization: architecture.normalization(channels: channels),
            classNames: classes == DatasetLoader.fashionMNISTClassNames.count
                ? DatasetLoader.fashionMNISTClassNames : (0..<classes).map(String.init),
            history: [HistoryEntry(pass: "init", parameters: width == 1 ? ["arch": architecture.rawValue]
                                       : ["arch": architecture.rawValue, "width": String(width)], seed: seed, metrics: metrics)])
        return Model(graph: graph, metadata: metadata)
    }
}

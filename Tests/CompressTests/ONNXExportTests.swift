import COnnxProto
import Foundation
import Testing
@testable import Compress

/// An exported ONNX file decoded with the generated protobuf-c code into
/// plain Swift values, so tests read what an ONNX runtime would read.
struct DecodedONNX {
    struct Node {
        var name: String
        var opType: String
        var inputs: [String]
        var outputs: [String]
        var ints: [String: [Int64]] = [:]
        var floats: [String: Float] = [:]
    }
    struct Initializer {
        var dims: [Int64]
        var dataType: Int32
        var raw: [UInt8]

        /// Raw data as little-endian float32 bit patterns.
        var float32Bits: [UInt32] {
            stride(from: 0, to: raw.count, by: 4).map { i in (0..<4).reduce(UInt32(0)) { $0 | UInt32(raw[i + $1]) << (8 * $1) } }
        }
        var int64s: [Int64] {
            stride(from: 0, to: raw.count, by: 8).map { i in
                Int64(bitPattern: (0..<8).reduce(UInt64(0)) { $0 | UInt64(raw[i + $1]) << (8 * $1) })
            }
        }
    }
    /// Dimensions: a value, or a parameter name, or nil when neither is set.
    enum Dim: Equatable { case value(Int64), param(String), none }

    var irVersion: Int64
    var opsets: [(domain: String, version: Int64)]
    var producer: String
    var nodes: [Node] = []
    var initializers: [String: Initializer] = [:]
    var inputs: [(name: String, elemType: Int32, dims: [Dim])] = []
    var outputs: [(name: String, elemType: Int32, dims: [Dim])] = []
    var metadata: [String: String] = [:]

    init(_ bytes: [UInt8]) throws {
        guard let m = bytes.withUnsafeBufferPointer({ onnx_subset__onnx_model__unpack(nil, $0.count, $0.baseAddress) }) else {
            throw CocoaError(.fileReadCorruptFile)
        }
        defer { onnx_subset__onnx_model__free_unpacked(m, nil) }
        irVersion = m.pointee.ir_version
        opsets = (0..<m.pointee.n_opset_import).map { i in
            let o = m.pointee.opset_import[i]!.pointee
            return (o.domain.map { String(cString: $0) } ?? "", o.version)
        }
        producer = m.pointee.producer_name.map { String(cString: $0) } ?? ""
        for i in 0..<m.pointee.n_metadata_props {
            let p = m.pointee.metadata_props[i]!.pointee
            metadata[String(cString: p.key)] = String(cString: p.value)
        }
        let g = m.pointee.graph!.pointee
        nodes = (0..<g.n_node).map { Self.node(g.node[$0]!.pointee) }
        for i in 0..<g.n_initializer {
            let t = g.initializer[i]!.pointee
            initializers[String(cString: t.name)] = Initializer(
                dims: Array(UnsafeBufferPointer(start: t.dims, count: t.n_dims)), dataType: t.data_type,
                raw: Array(UnsafeBufferPointer(start: t.raw_data.data, count: t.raw_data.len)))
        }
        inputs = (0..<g.n_input).map { Self.valueInfo(g.input[$0]!.pointee) }
        outputs = (0..<g.n_output).map { Self.valueInfo(g.output[$0]!.pointee) }
    }

    static func strings(_ p: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?, _ n: Int) -> [String] {
        (0..<n).map { String(cString: p![$0]!) }
    }

    static func node(_ n: OnnxSubset__OnnxNode) -> Node {
        var node = Node(name: String(cString: n.name), opType: String(cString: n.op_type),
                        inputs: strings(n.input, n.n_input), outputs: strings(n.output, n.n_output))
        for i in 0..<n.n_attribute {
            let a = n.attribute[i]!.pointee
            let name = String(cString: a.name)
            if a.has_i != 0 { node.ints[name] = [a.i] }
            if a.n_ints > 0 { node.ints[name] = Array(UnsafeBufferPointer(start: a.ints, count: a.n_ints)) }
            if a.has_f != 0 { node.floats[name] = a.f }
        }
        return node
    }

    static func valueInfo(_ v: OnnxSubset__OnnxValueInfo) -> (name: String, elemType: Int32, dims: [Dim]) {
        let t = v.type!.pointee.tensor_type!.pointee
        let shape = t.shape!.pointee
        let dims: [Dim] = (0..<shape.n_dim).map { i in
            let d = shape.dim[i]!.pointee
            switch d.value_case {
            case ONNX_SUBSET__ONNX_TENSOR_SHAPE__DIMENSION__VALUE_DIM_VALUE: return .value(d.dim_value)
            case ONNX_SUBSET__ONNX_TENSOR_SHAPE__DIMENSION__VALUE_DIM_PARAM: return .param(String(cString: d.dim_param))
            default: return .none
            }
        }
        return (String(cString: v.name), t.elem_type, dims)
    }
}

@Suite struct ONNXExportTests {
    // MARK: Fixtures

    /// A valid model whose graph uses every op once (avgPool twice), with
    /// initializers in every storage type and a normalization on 2 channels.
    static func everyOpModel() -> Model {
        let conv = Conv2d(stride: Size2(2, 1), padding: Padding2(top: 1, left: 2, bottom: 3, right: 4),
                          dilation: Size2(1, 2), groups: 2)
        let pool = Pool2d(kernel: Size2(3, 2), stride: Size2(2, 1), padding: Padding2(top: 0, left: 1, bottom: 1, right: 0),
                          ceilMode: true)
        let ops: [(Op, [String])] = [
            (.conv2d(conv), ["x", "conv.w", "conv.b"]),
            (.batchNorm(epsilon: 1e-3), ["v0", "bn.scale", "bn.bias", "bn.mean", "bn.var"]),
            (.relu, ["v1"]), (.relu6, ["v2"]), (.leakyRelu(alpha: 0.25), ["v3"]), (.sigmoid, ["v4"]), (.tanh, ["v5"]),
            (.maxPool(pool), ["v6"]),
            (.avgPool(Pool2d(kernel: .square(2)), countIncludePad: true), ["v6"]),
            (.avgPool(pool, countIncludePad: false), ["v6"]),
            (.globalAvgPool, ["v6"]),
            (.add, ["v10", "v10"]), (.sub, ["v11", "v10"]), (.mul, ["v12", "v11"]), (.div, ["v13", "v12"]),
            (.concat(axis: 1), ["v14", "v13"]),
            (.flatten(axis: 1), ["v15"]),
            (.reshape(shape: [0, -1]), ["v16"]),
            (.linear, ["v17", "fc.w"]),
            (.dropout(ratio: 0.5), ["v18"]),
            (.softmax(axis: -1), ["v19"]),
        ]
        let nodes = ops.enumerated().map { i, entry in
            Node(name: "node\(i) \(entry.0.kind)", op: entry.0, inputs: entry.1, output: "v\(i)")
        }
        let initializers: [String: Tensor] = [
            "conv.w": Tensor(shape: [4, 1, 3, 3], floats: (0..<36).map { Float($0) * 0.1 - 1.7 }),
            "conv.b": Tensor(shape: [4], floats: [-0.0, 1.5, -2, .leastNonzeroMagnitude]),
            "bn.scale": Tensor(shape: [4], floats: [0.5, 1, 2, -1]),
            "bn.bias": try! Tensor(shape: [4], storage: .float16([0x3C00, 0x8000, 0x7BFF, 0x0001])),
            "bn.mean": try! Tensor(shape: [4], storage: .int8([-128, -1, 0, 127])),
            "bn.var": try! Tensor(shape: [4], storage: .uint8([1, 2, 128, 255])),
            "fc.w": Tensor(shape: [3, 8], floats: (0..<24).map { Float($0) / 3 }),
            "unused.shape": Tensor(shape: [2], int64s: [.min, .max]),
        ]
        let graph = Graph(inputs: [GraphInput(name: "x", sampleShape: [2, 8, 8])], outputs: ["v20", "v10"],
                          nodes: nodes, initializers: initializers)
        return Model(graph: graph, metadata: ModelMetadata(
            architecture: "every-op", normalization: Normalization(mean: [0.25, 0.5], std: [0.5, 2]),
            classNames: ["a", "b", "c"]))
    }

    static func export(_ model: Model, opset: Int = 13) throws -> DecodedONNX {
        try DecodedONNX(try ONNXExporter.encode(model, opset: opset))
    }

    // MARK: Model, graph inputs and outputs

    @Test func headerNamesOpsetIRVersionAndProducer() throws {
        let onnx = try Self.export(Architecture.lenet5.build(seed: 0))
        #expect(onnx.irVersion == 7)
        #expect(onnx.opsets.count == 1 && onnx.opsets[0].domain == "" && onnx.opsets[0].version == 13)
        #expect(onnx.producer == "compressor")
        let newer = try Self.export(Architecture.lenet5.build(seed: 0), opset: 19)
        #expect(newer.irVersion == 9 && newer.opsets[0].version == 19)
    }

    @Test func inputsAndOutputsHaveASymbolicBatch() throws {
        let onnx = try Self.export(Architecture.resnet20.build(seed: 0))
        #expect(onnx.inputs.count == 1)
        #expect(onnx.inputs[0].name == "input" && onnx.inputs[0].elemType == 1)
        #expect(onnx.inputs[0].dims == [.param("N"), .value(1), .value(28), .value(28)])
        #expect(onnx.outputs.map(\.name) == ["fc"])
        #expect(onnx.outputs[0].dims == [.param("N"), .value(10)])
    }

    @Test func metadataCarriesArchitectureAndClassNames() throws {
        let model = Architecture.vggSmall.build(seed: 0)
        let onnx = try Self.export(model)
        #expect(onnx.metadata[ONNXExporter.architectureKey] == "vgg-small")
        #expect(onnx.metadata[ONNXExporter.classNamesKey]?.split(separator: "\n").map(String.init) == model.metadata.classNames)
    }

    // MARK: Normalization

    @Test func normalizationComesFirstAsSubAndDiv() throws {
        let onnx = try Self.export(Self.everyOpModel())
        let (sub, div) = (onnx.nodes[0], onnx.nodes[1])
        #expect(sub.opType == "Sub" && sub.inputs == ["x", "compressor.normalization.mean"])
        #expect(div.opType == "Div" && div.inputs == [sub.outputs[0], "compressor.normalization.std"])
        #expect(onnx.nodes[2].inputs[0] == div.outputs[0])
        #expect(onnx.nodes.dropFirst(3).allSatisfy { !$0.inputs.contains("x") })
        let mean = try #require(onnx.initializers["compressor.normalization.mean"])
        #expect(mean.dims == [2, 1, 1] && mean.float32Bits == [Float(0.25).bitPattern, Float(0.5).bitPattern])
        let std = try #require(onnx.initializers["compressor.normalization.std"])
        #expect(std.float32Bits == [Float(0.5).bitPattern, Float(2).bitPattern])
    }

    @Test func noNormalizationNoNodes() throws {
        var model = Architecture.lenet300.build(seed: 0)
        model.metadata.normalization = nil
        let onnx = try Self.export(model)
        #expect(onnx.nodes.first?.opType == "Flatten" && onnx.nodes.first?.inputs == ["input"])
    }

    @Test func mismatchedNormalizationIsRefused() {
        var model = Architecture.lenet5.build(seed: 0)
        model.metadata.normalization = Normalization(mean: [0, 0, 0], std: [1, 1, 1])
        #expect(throws: ONNXExportError.normalizationMismatch(channels: 1, mean: 3, std: 3)) {
            try ONNXExporter.encode(model)
        }
    }

    // MARK: Ops

    @Test func everyOpExports() throws {
        let onnx = try Self.export(Self.everyOpModel())
        #expect(onnx.nodes.map(\.opType) == [
            "Sub", "Div", "Conv", "BatchNormalization", "Relu", "Clip", "LeakyRelu", "Sigmoid", "Tanh", "MaxPool",
            "AveragePool", "AveragePool", "GlobalAveragePool", "Add", "Sub", "Mul", "Div", "Concat", "Flatten",
            "Reshape", "Gemm", "Identity", "Softmax",
        ])
        let graphNodes = Self.everyOpModel().graph.nodes
        #expect(onnx.nodes.dropFirst(2).map(\.name) == graphNodes.map(\.name))
        #expect(onnx.nodes.dropFirst(2).map(\.outputs) == graphNodes.map { [$0.output] })
        #expect(onnx.outputs.map(\.name) == ["v20", "v10"])
        #expect(onnx.outputs[1].dims == [.param("N"), .value(4), .value(1), .value(1)])
    }

    @Test func convAttributesFollowONNXOrder() throws {
        let conv = try #require(try Self.export(Self.everyOpModel()).nodes.first { $0.opType == "Conv" })
        #expect(conv.ints["pads"] == [1, 2, 3, 4])
        #expect(conv.ints["strides"] == [2, 1])
        #expect(conv.ints["dilations"] == [1, 2])
        #expect(conv.ints["group"] == [2])
        #expect(conv.ints["kernel_shape"] == [3, 3])
        #expect(conv.inputs.count == 3)
    }

    @Test func poolAttributes() throws {
        let onnx = try Self.export(Self.everyOpModel())
        let max = try #require(onnx.nodes.first { $0.opType == "MaxPool" })
        #expect(max.ints["kernel_shape"] == [3, 2] && max.ints["strides"] == [2, 1])
        #expect(max.ints["pads"] == [0, 1, 1, 0] && max.ints["ceil_mode"] == [1])
        let averages = onnx.nodes.filter { $0.opType == "AveragePool" }
        #expect(averages.map { $0.ints["count_include_pad"] } == [[1], [0]])
        #expect(averages.map { $0.ints["ceil_mode"] } == [[0], [1]])
        #expect(averages.allSatisfy { $0.ints["dilations"] == nil })
    }

    @Test func scalarAttributesAndConstantInputs() throws {
        let onnx = try Self.export(Self.everyOpModel())
        func node(_ type: String) throws -> DecodedONNX.Node { try #require(onnx.nodes.first { $0.opType == type }) }
        #expect(try node("Gemm").ints["transB"] == [1])
        #expect(try node("Gemm").inputs == ["v17", "fc.w"])
        #expect(try node("BatchNormalization").floats["epsilon"] == 1e-3)
        #expect(try node("LeakyRelu").floats["alpha"] == 0.25)
        #expect(try node("Softmax").ints["axis"] == [-1])
        #expect(try node("Concat").ints["axis"] == [1])
        #expect(try node("Flatten").ints["axis"] == [1])
        let clip = try node("Clip")
        #expect(clip.inputs.count == 3)
        #expect(onnx.initializers[clip.inputs[1]]?.float32Bits == [Float(0).bitPattern])
        #expect(onnx.initializers[clip.inputs[2]]?.float32Bits == [Float(6).bitPattern])
        #expect(onnx.initializers[clip.inputs[1]]?.dims == [])
        let target = try #require(onnx.initializers[try node("Reshape").inputs[1]])
        #expect(target.dataType == 7 && target.dims == [2] && target.int64s == [0, -1])
    }

    @Test func dilatedAveragePoolNeedsOpset19() throws {
        let pool = Pool2d(kernel: .square(2), stride: .square(1), dilation: .square(2))
        let graph = Graph(inputs: [GraphInput(name: "x", sampleShape: [1, 6, 6])], outputs: ["y"],
                          nodes: [Node(name: "pool", op: .avgPool(pool, countIncludePad: false), inputs: ["x"], output: "y")],
                          initializers: [:])
        let model = Model(graph: graph)
        #expect(throws: ONNXExportError.self) { try ONNXExporter.encode(model, opset: 18) }
        let onnx = try Self.export(model, opset: 19)
        #expect(onnx.nodes[0].ints["dilations"] == [2, 2])
    }

    @Test func unsupportedOpsetsAndInvalidGraphsAreRefused() {
        let model = Architecture.lenet5.build(seed: 0)
        #expect(throws: ONNXExportError.unsupportedOpset(12)) { try ONNXExporter.encode(model, opset: 12) }
        var broken = model
        broken.graph.nodes[0].inputs[1] = "missing"
        #expect(throws: ONNXExportError.self) { try ONNXExporter.encode(broken) }
        var nul = model
        nul.graph.nodes[0].name = "conv\u{0}1"
        #expect(throws: ONNXExportError.self) { try ONNXExporter.encode(nul) }
    }

    // MARK: Initializers and determinism

    @Test func initializersRoundTripAsFloat32() throws {
        let model = Self.everyOpModel()
        let onnx = try Self.export(model)
        for (name, tensor) in model.graph.initializers where name != "unused.shape" {
            let t = try #require(onnx.initializers[name])
            #expect(t.dataType == 1, "\(name)")
            #expect(t.dims == tensor.shape.map(Int64.init), "\(name)")
            #expect(t.float32Bits == tensor.floats.map(\.bitPattern), "\(name)")
        }
        let shape = try #require(onnx.initializers["unused.shape"])
        #expect(shape.dataType == 7 && shape.int64s == [.min, .max])
    }

    @Test func bytesAreDeterministic() throws {
        let model = Self.everyOpModel()
        let bytes = try ONNXExporter.encode(model)
        #expect(try ONNXExporter.encode(model) == bytes)
        var rebuilt = model
        rebuilt.graph.initializers = [:]
        for name in model.graph.initializers.keys.sorted().reversed() { rebuilt.graph.initializers[name] = model.graph.initializers[name] }
        #expect(try ONNXExporter.encode(rebuilt) == bytes)
        let names = try DecodedONNX(bytes).initializers.keys
        #expect(names.count == model.graph.initializers.count + 5)
    }

    @Test func addedNamesAvoidExistingOnes() throws {
        var model = Self.everyOpModel()
        model.graph.initializers["relu6.min"] = Tensor(shape: [1], floats: [9])
        model.graph.initializers["compressor.normalization.mean"] = Tensor(shape: [1], floats: [9])
        let onnx = try Self.export(model)
        let clip = try #require(onnx.nodes.first { $0.opType == "Clip" })
        #expect(clip.inputs[1] != "relu6.min" && onnx.initializers[clip.inputs[1]]?.float32Bits == [0])
        #expect(onnx.nodes[0].inputs[1] != "compressor.normalization.mean")
        #expect(onnx.initializers["relu6.min"]?.float32Bits == [Float(9).bitPattern])
    }

    // MARK: Writing

    @Test func formatFollowsTheExtension() {
        #expect(ModelFormat.forOutputPath("m.onnx") == .onnx)
        #expect(ModelFormat.forOutputPath("/tmp/M.ONNX") == .onnx)
        #expect(ModelFormat.forOutputPath("m.bin") == .native)
        #expect(ModelFormat.forOutputPath("m") == .native)
        #expect(ModelFormat.forOutputPath("x.onnx/m.bin") == .native)
    }

    @Test func writerWritesEitherFormat() throws {
        let directory = NSTemporaryDirectory() + "onnx-export-tests-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let model = Architecture.lenet300.build(seed: 3)
        try ModelWriter.write(model, to: directory + "/m.onnx", format: .onnx)
        try ModelWriter.write(model, to: directory + "/m.bin", format: .native)
        #expect(Array(try Data(contentsOf: URL(fileURLWithPath: directory + "/m.onnx"))) == (try ONNXExporter.encode(model)))
        #expect(try ModelFile.read(path: directory + "/m.bin") == model)
    }
}

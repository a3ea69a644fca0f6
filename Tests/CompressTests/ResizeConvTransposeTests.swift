import Testing
@testable import Compress

/// One transposed-convolution case: input sample shape, weight `[C, O/groups, kh, kw]`, attributes, bias.
struct ConvTransposeCase: Sendable, CustomTestStringConvertible {
    var label: String
    var sample: [Int]
    var weight: [Int]
    var attributes: ConvTranspose2d
    var hasBias = true
    var testDescription: String { label }
}

/// Resize (nearest and bilinear) and ConvTranspose: golden values, shape
/// inference, the runtime against the reference, finite-difference gradients,
/// the native file and ONNX export and import.
@Suite struct ResizeConvTransposeTests {
    typealias F = RuntimeFixtures
    typealias G = GradientCheck

    static let convTransposeCases: [ConvTransposeCase] = [
        ConvTransposeCase(label: "3x3 stride 1", sample: [3, 5, 5], weight: [3, 4, 3, 3], attributes: ConvTranspose2d()),
        ConvTransposeCase(label: "2x2 stride 2 (U-Net up)", sample: [4, 4, 5], weight: [4, 3, 2, 2],
                          attributes: ConvTranspose2d(stride: .square(2))),
        ConvTransposeCase(label: "3x3 stride 2 pad 1 output padding 1", sample: [2, 4, 4], weight: [2, 3, 3, 3],
                          attributes: ConvTranspose2d(stride: .square(2), padding: .same(1), outputPadding: .square(1))),
        ConvTransposeCase(label: "asymmetric pads, stride (3, 2), 3x2 kernel, no bias", sample: [2, 3, 4], weight: [2, 2, 3, 2],
                          attributes: ConvTranspose2d(stride: Size2(3, 2), padding: Padding2(top: 1, left: 0, bottom: 2, right: 1)),
                          hasBias: false),
        ConvTransposeCase(label: "dilation 2", sample: [2, 4, 4], weight: [2, 3, 3, 3],
                          attributes: ConvTranspose2d(padding: .same(1), dilation: .square(2))),
        ConvTransposeCase(label: "groups 2", sample: [4, 3, 3], weight: [4, 3, 3, 3],
                          attributes: ConvTranspose2d(stride: .square(2), groups: 2)),
        ConvTransposeCase(label: "depthwise 3x3 pad 1", sample: [5, 6, 6], weight: [5, 1, 3, 3],
                          attributes: ConvTranspose2d(padding: .same(1), groups: 5)),
    ]

    static let resizes: [Resize2d] = {
        var list: [Resize2d] = []
        for coordinates in Resize2d.CoordinateTransformation.allCases {
            list.append(Resize2d(mode: .linear, coordinates: coordinates, scaleH: 2, scaleW: 1.5))
            list.append(Resize2d(mode: .linear, coordinates: coordinates, scaleH: 0.6, scaleW: 0.5))
        }
        for rounding in Resize2d.NearestRounding.allCases {
            list.append(Resize2d(mode: .nearest, coordinates: .halfPixel, nearestRounding: rounding, scaleH: 3, scaleW: 2.5))
            list.append(Resize2d(mode: .nearest, coordinates: .asymmetric, nearestRounding: rounding, scaleH: 0.5, scaleW: 0.75))
        }
        list.append(Resize2d(mode: .nearest, coordinates: .alignCorners, nearestRounding: .floor, scaleH: 7 / 5, scaleW: 3 / 6,
                             size: Size2(7, 3)))
        list.append(Resize2d(mode: .linear, coordinates: .pytorchHalfPixel, scaleH: 1 / 5, scaleW: 13 / 6, size: Size2(1, 13)))
        return list
    }()

    // MARK: Golden values

    /// ONNX's `test_convtranspose`: x = 0..8 as 3x3, weight all ones [1, 2, 3, 3].
    @Test func convTransposeMatchesONNXsExample() throws {
        let x = Tensor(shape: [1, 1, 3, 3], floats: (0..<9).map(Float.init))
        let y = ReferenceEvaluator.convTranspose(x, weight: .filled([1, 2, 3, 3], with: 1), bias: nil, ConvTranspose2d())
        let plane: [Float] = [0, 1, 3, 3, 2, 3, 8, 15, 12, 7, 9, 21, 36, 27, 15, 9, 20, 33, 24, 13, 6, 13, 21, 15, 8]
        #expect(y.shape == [1, 2, 5, 5])
        #expect(y.floats == plane + plane)
    }

    /// Stride 2 with a 2x2 kernel tiles `x[i][j] · w` without overlap; output padding adds a zero row and column, plus bias.
    @Test func convTransposeStrideTwoTilesTheKernel() throws {
        let x = Tensor(shape: [1, 1, 2, 2], floats: [1, 2, 3, 4])
        let w = Tensor(shape: [1, 1, 2, 2], floats: [1, 10, 100, 1000])
        let y = ReferenceEvaluator.convTranspose(x, weight: w, bias: Tensor(shape: [1], floats: [0.5]),
                                                 ConvTranspose2d(stride: .square(2), outputPadding: .square(1)))
        #expect(y.shape == [1, 1, 5, 5])
        let expected: [Float] = [1, 10, 2, 20, 0,
                                 100, 1000, 200, 2000, 0,
                                 3, 30, 4, 40, 0,
                                 300, 3000, 400, 4000, 0,
                                 0, 0, 0, 0, 0]
        #expect(y.floats == expected.map { $0 + 0.5 })
    }

    static let square = Tensor(shape: [1, 1, 2, 2], floats: [1, 2, 3, 4])

    /// `F.interpolate(scale_factor=2)` nearest: asymmetric coordinates, floor.
    @Test func nearestDoublingRepeatsPixels() {
        let r = Resize2d(mode: .nearest, coordinates: .asymmetric, nearestRounding: .floor, scaleH: 2, scaleW: 2)
        #expect(ReferenceEvaluator.resize(Self.square, r).floats == [1, 1, 2, 2, 1, 1, 2, 2, 3, 3, 4, 4, 3, 3, 4, 4])
    }

    /// Bilinear with align_corners=False (half pixel): PyTorch's values for [[1, 2], [3, 4]] doubled.
    @Test func bilinearHalfPixelDoubling() {
        for coordinates in [Resize2d.CoordinateTransformation.halfPixel, .pytorchHalfPixel] {
            let y = ReferenceEvaluator.resize(Self.square, Resize2d(mode: .linear, coordinates: coordinates, scaleH: 2, scaleW: 2))
            expectClose(y.floats, [1, 1.25, 1.75, 2, 1.5, 1.75, 2.25, 2.5, 2.5, 2.75, 3.25, 3.5, 3, 3.25, 3.75, 4],
                        tolerance: 1e-6)
        }
    }

    /// align_corners=True: output pixel (i, j) of 4x4 reads (i/3, j/3) of the 2x2 corners, 1 + 2·i/3 + j/3.
    @Test func bilinearAlignCornersDoubling() {
        let y = ReferenceEvaluator.resize(Self.square, Resize2d(mode: .linear, coordinates: .alignCorners, scaleH: 2, scaleW: 2))
        var expected: [Float] = []
        for i in 0..<4 {
            for j in 0..<4 { expected.append(1 + 2 * Float(i) / 3 + Float(j) / 3) }
        }
        expectClose(y.floats, expected, tolerance: 1e-6)
    }

    /// ONNX's `test_resize_downsample_scales_linear`: [[1..4], [5..8]] by 0.6 gives [[2.6666665, 4.3333331]].
    @Test func bilinearDownsamplingMatchesONNXsExample() {
        let x = Tensor(shape: [1, 1, 2, 4], floats: (1...8).map(Float.init))
        let y = ReferenceEvaluator.resize(x, Resize2d(mode: .linear, scaleH: 0.6, scaleW: 0.6))
        #expect(y.shape == [1, 1, 1, 2])
        expectClose(y.floats, [2.6666665, 4.3333331], tolerance: 1e-6)
    }

    /// Asymmetric by 4 reads source coordinates 0, 0.25, 0.5, ..., 1.75: the four roundings
    /// differ at 0.25 (ceil), 0.5 (the ties) and 0.75 (floor); past the last pixel they clamp.
    @Test func nearestRoundings() {
        let x = Tensor(shape: [1, 1, 1, 2], floats: [10, 20])
        func row(_ rounding: Resize2d.NearestRounding) -> [Float] {
            ReferenceEvaluator.resize(x, Resize2d(mode: .nearest, coordinates: .asymmetric, nearestRounding: rounding,
                                                  scaleH: 1, scaleW: 4)).floats
        }
        #expect(row(.roundPreferFloor) == [10, 10, 10, 20, 20, 20, 20, 20])
        #expect(row(.roundPreferCeil) == [10, 10, 20, 20, 20, 20, 20, 20])
        #expect(row(.floor) == [10, 10, 10, 10, 20, 20, 20, 20])
        #expect(row(.ceil) == [10, 20, 20, 20, 20, 20, 20, 20])
    }

    // MARK: Shapes

    @Test func shapesAndErrors() throws {
        let convT = Node(name: "t", op: .convTranspose(ConvTranspose2d(stride: .square(2), padding: .same(1), outputPadding: .square(1))),
                         inputs: ["x", "w"], output: "y")
        #expect(try convT.outputShape(inputShapes: [[2, 3, 4, 5], [3, 6, 3, 3]]) == [2, 6, 8, 10])
        #expect(throws: GraphError.self) { try convT.outputShape(inputShapes: [[2, 4, 4, 5], [3, 6, 3, 3]]) }
        let tooMuchPadding = Node(name: "t", op: .convTranspose(ConvTranspose2d(outputPadding: .square(1))), inputs: ["x", "w"], output: "y")
        #expect(throws: GraphError.self) { try tooMuchPadding.outputShape(inputShapes: [[1, 3, 4, 4], [3, 2, 3, 3]]) }
        let grouped = Node(name: "t", op: .convTranspose(ConvTranspose2d(groups: 2)), inputs: ["x", "w"], output: "y")
        #expect(try grouped.outputShape(inputShapes: [[1, 4, 4, 4], [4, 3, 3, 3]]) == [1, 6, 6, 6])
        let resize = Node(name: "r", op: .resize(Resize2d(mode: .nearest, scaleH: 0.6, scaleW: 2.5)), inputs: ["x"], output: "y")
        #expect(try resize.outputShape(inputShapes: [[2, 3, 5, 3]]) == [2, 3, 3, 7])
        #expect(throws: GraphError.self) { try resize.outputShape(inputShapes: [[2, 3, 5]]) }
        let sized = Node(name: "r", op: .resize(Resize2d(mode: .linear, scaleH: 13 / 11, scaleW: 1, size: Size2(13, 4))),
                         inputs: ["x"], output: "y")
        #expect(try sized.outputShape(inputShapes: [[1, 2, 11, 4]]) == [1, 2, 13, 4])
        let vanishing = Node(name: "r", op: .resize(Resize2d(mode: .nearest, scaleH: 0.1, scaleW: 1)), inputs: ["x"], output: "y")
        #expect(throws: GraphError.self) { try vanishing.outputShape(inputShapes: [[1, 2, 5, 4]]) }
    }

    // MARK: Runtime against the reference

    @Test(arguments: convTransposeCases) func convTransposeKernelMatchesReference(_ c: ConvTransposeCase) throws {
        var parameters = [("w", F.weights(c.weight, seed: 7))]
        if c.hasBias { parameters.append(("b", F.weights([c.weight[1] * c.attributes.groups], seed: 8))) }
        let graph = F.singleOp(.convTranspose(c.attributes), sample: c.sample, parameters: parameters)
        #expect(try F.sessionMatchesReference(graph, batch: 1))
        #expect(try F.sessionMatchesReference(graph, batch: 3))
    }

    /// A ReLU after a ConvTranspose moves into its epilogue and gives the same values.
    @Test func reluIsFusedIntoTheTransposedConvolution() throws {
        var graph = F.singleOp(.convTranspose(ConvTranspose2d(stride: .square(2))), sample: [3, 4, 4],
                               parameters: [("w", F.weights([3, 4, 2, 2], seed: 2)), ("b", F.weights([4], seed: 3))])
        graph.nodes[0].output = "t"
        graph.nodes.append(Node(name: "relu", op: .relu, inputs: ["t"], output: "y"))
        let (fused, activations, removed) = graph.fusingActivations()
        #expect(removed == ["relu"] && activations["op"] == .relu && fused.nodes.count == 1)
        #expect(try F.sessionMatchesReference(graph, batch: 2))
    }

    /// A BatchNorm after a ConvTranspose (grouped, so each output channel's scale lands on weight axis 1
    /// within its group) folds into it and computes what the two nodes did.
    @Test(arguments: [1, 2]) func batchNormFoldsIntoTheTransposedConvolution(_ groups: Int) throws {
        let parameters = [("w", F.weights([4, 3, 2, 2], seed: 2)), ("b", F.weights([3 * groups], seed: 3))]
        var graph = F.singleOp(.convTranspose(ConvTranspose2d(stride: .square(2), groups: groups)), sample: [4, 3, 3],
                               parameters: parameters)
        graph.nodes[0].output = "t"
        let bn = F.batchNormParameters("bn", channels: 3 * groups, seed: 4)
        for (name, t) in bn { graph.initializers[name] = t }
        graph.nodes.append(Node(name: "bn", op: .batchNorm(epsilon: 1e-5), inputs: ["t"] + bn.map(\.0), output: "y"))
        let (folded, names) = foldingBatchNorm(graph)
        #expect(names == ["bn"] && folded.nodes.map(\.name) == ["op"] && folded.nodes[0].output == "y")
        var rng = SeededGenerator(seed: 9)
        let x = rng.gaussianTensor([2, 4, 3, 3])
        expectClose(try ReferenceEvaluator.run(folded, inputs: ["x": x])["y"]!,
                    try ReferenceEvaluator.run(graph, inputs: ["x": x])["y"]!, tolerance: 1e-5)
    }

    @Test(arguments: resizes) func resizeKernelMatchesReference(_ r: Resize2d) throws {
        let sample = r.size == nil ? [3, 5, 6] : [2, 5, 6]
        let graph = F.singleOp(.resize(r), sample: sample)
        for (fast, reference) in try F.bothOutputs(graph, batch: 2) {
            expectClose(fast, reference, tolerance: 1e-5, "\(r)")
        }
    }

    // MARK: Gradients

    @Test(arguments: convTransposeCases) func convTransposeGradients(_ c: ConvTransposeCase) throws {
        var parameters = [("w", F.weights(c.weight, seed: 3))]
        if c.hasBias { parameters.append(("b", F.weights([c.weight[1] * c.attributes.groups], seed: 4))) }
        let graph = F.singleOp(.convTranspose(c.attributes), sample: c.sample, parameters: parameters)
        let result = try G.run(graph, input: G.gaussian([2] + c.sample, seed: 1))
        #expect(result.worst < TrainingGradientTests.tolerance, "\(result)")
    }

    @Test(arguments: [Resize2d(mode: .linear, coordinates: .pytorchHalfPixel, scaleH: 2, scaleW: 2),
                      Resize2d(mode: .linear, coordinates: .alignCorners, scaleH: 0.6, scaleW: 1.5),
                      Resize2d(mode: .nearest, coordinates: .asymmetric, nearestRounding: .floor, scaleH: 2, scaleW: 3),
                      Resize2d(mode: .nearest, coordinates: .halfPixel, scaleH: 0.5, scaleW: 0.75)])
    func resizeGradients(_ r: Resize2d) throws {
        let result = try G.run(F.singleOp(.resize(r), sample: [2, 5, 4]), input: G.gaussian([2, 2, 5, 4], seed: 1))
        #expect(result.worst < TrainingGradientTests.tolerance, "\(result)")
    }

    // MARK: Files

    /// x ─ up (convT 2x2 stride 2, 6x6) ─ relu ─ nearest x2 (12x12) ─ bilinear to `size` (sizes) ─ y, on 3x3 inputs.
    static func decoder(sizedTo size: Int = 13) -> Model {
        let nodes = [
            Node(name: "up", op: .convTranspose(ConvTranspose2d(stride: .square(2), padding: Padding2(top: 1, left: 0, bottom: 0, right: 1),
                                                                dilation: Size2(1, 2), outputPadding: Size2(1, 0))),
                 inputs: ["x", "up.w", "up.b"], output: "up"),
            Node(name: "relu", op: .relu, inputs: ["up"], output: "relu"),
            Node(name: "nearest", op: .resize(Resize2d(mode: .nearest, coordinates: .asymmetric, nearestRounding: .floor,
                                                       scaleH: 2, scaleW: 2)), inputs: ["relu"], output: "nearest"),
            Node(name: "bilinear", op: .resize(Resize2d(mode: .linear, coordinates: .pytorchHalfPixel,
                                                        scaleH: Float(size) / 12, scaleW: Float(size) / 12, size: Size2(size, size))),
                 inputs: ["nearest"], output: "y"),
        ]
        let graph = Graph(inputs: [GraphInput(name: "x", sampleShape: [3, 3, 3])], outputs: ["y"], nodes: nodes,
                          initializers: ["up.w": F.weights([3, 2, 2, 2], seed: 5), "up.b": F.weights([2], seed: 6)])
        return Model(graph: graph)
    }

    @Test func nativeFileRoundTrips() throws {
        let model = Self.decoder()
        #expect(try model.graph.inferShapes(batch: 1)["y"] == [1, 2, 13, 13])
        #expect(try ModelFile.decode(try ModelFile.encode(model)) == model)
    }

    @Test func onnxExportWritesScalesAndImportsBack() throws {
        let model = Self.decoder(sizedTo: 15)
        let onnx = try DecodedONNX(try ONNXExporter.encode(model))
        #expect(onnx.nodes.map(\.opType) == ["ConvTranspose", "Relu", "Resize", "Resize"])
        let convT = onnx.nodes[0]
        #expect(convT.ints["strides"] == [2, 2] && convT.ints["pads"] == [1, 0, 0, 1] && convT.ints["dilations"] == [1, 2])
        #expect(convT.ints["output_padding"] == [1, 0] && convT.ints["group"] == [1] && convT.ints["kernel_shape"] == [2, 2])
        // 15 = 12·1.25: sizes a scale reproduces are written as that scale.
        let scales = try #require(onnx.initializers[onnx.nodes[3].inputs[2]])
        #expect(onnx.nodes[3].inputs[1] == "" && scales.float32Bits.map(Float.init(bitPattern:)) == [1, 1, 1.25, 1.25])
        let imported = try ONNXImporter.decode(try ONNXExporter.encode(model))
        var expected = model.graph.nodes.map(\.op)
        expected[3] = .resize(Resize2d(mode: .linear, coordinates: .pytorchHalfPixel, scaleH: 1.25, scaleW: 1.25))
        #expect(imported.graph.nodes.map(\.op) == expected)
        var rng = SeededGenerator(seed: 3)
        let x = rng.gaussianTensor([2, 3, 3, 3])
        expectClose(try Session(model: imported).run(inputs: ["x": x])["y"]!,
                    try ReferenceEvaluator.run(model.graph, inputs: ["x": x])["y"]!, tolerance: 1e-5)
    }

    /// 13 from 11: Float(13) / 11 · 11 truncates to 12, so the export writes sizes on axes [2, 3], from opset 18.
    @Test func sizesNoScaleReproducesNeedOpset18() throws {
        let model = Self.decoder(sizedTo: 13)
        var eleven = model
        eleven.graph.nodes[3].op = .resize(Resize2d(mode: .linear, coordinates: .halfPixel, scaleH: 13 / 11, scaleW: 13 / 11,
                                                    size: Size2(13, 13)))
        eleven.graph.nodes[2].op = .resize(Resize2d(mode: .nearest, coordinates: .asymmetric, nearestRounding: .floor,
                                                    scaleH: 11 / 6, scaleW: 11 / 6))
        #expect(throws: ONNXExportError.requiresNewerOpset(node: "bilinear", minimum: 18,
                                                           reason: "Resize to 13 is written as sizes on axes [2, 3], which needs opset 18")) {
            try ONNXExporter.encode(eleven, opset: 13)
        }
        let onnx = try DecodedONNX(try ONNXExporter.encode(eleven, opset: 18))
        #expect(onnx.nodes[3].ints["axes"] == [2, 3])
        #expect(onnx.initializers[onnx.nodes[3].inputs[3]]?.int64s == [13, 13])
        let imported = try ONNXImporter.decode(try ONNXExporter.encode(eleven, opset: 18))
        #expect(imported.graph.nodes.map(\.op) == eleven.graph.nodes.map(\.op))
    }
}

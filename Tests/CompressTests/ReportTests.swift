import Foundation
import Testing
@testable import Compress

/// Reports: Pareto fronts, measured values against independent oracles (counts
/// and MACs by hand, file sizes from `stat`, accuracy from a plain loop over the
/// reference evaluator's logits), and the three documents.
@Suite struct ReportTests {
    /// A quick benchmark: the numbers are not under test here, only that they are there.
    static let quickSettings = ReportSettings(
        batches: [1, 4], threads: [1],
        latency: LatencyBenchmark(warmupRuns: 1, minRepetitions: 2, minSeconds: 0))

    func temporaryDirectory() throws -> String {
        let d = FileManager.default.temporaryDirectory.appendingPathComponent("report-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: d, withIntermediateDirectories: true)
        return d
    }

    /// 24 seeded random test images with seeded random labels.
    func testImages() -> LabeledImages {
        var rng = SeededGenerator(seed: 5)
        let images = rng.uniformTensor([24, 1, 28, 28])
        return LabeledImages(images: images, labels: (0..<24).map { Int32(($0 * 7) % 10) })
    }

    /// lenet300 (baseline), the same with half of fc1's weights zeroed, and lenet5, as files.
    func writeModels(in dir: String) throws -> [(label: String, path: String)] {
        let base = Architecture.lenet300.build(seed: 1)
        var sparse = base
        let fc1 = try #require(sparse.graph.nodes.first { $0.name == "fc1" }).inputs[1]
        var w = sparse.graph.initializers[fc1]!.floats
        for i in 0..<(w.count / 2) { w[i] = 0 }
        sparse.graph.initializers[fc1] = Tensor(shape: sparse.graph.initializers[fc1]!.shape, floats: w)
        let models = [("lenet300", base), ("sparse", sparse), ("lenet5", Architecture.lenet5.build(seed: 2))]
        return try models.map { label, model in
            let path = (dir as NSString).appendingPathComponent("\(label).bin")
            try ModelFile.write(model, to: path)
            return (label: label, path: path)
        }
    }

    func buildReport() throws -> (ComparisonReport, [(label: String, path: String)], LabeledImages) {
        let models = try writeModels(in: try temporaryDirectory())
        let test = testImages()
        let report = try ReportBuilder.build(models: models, test: test, settings: Self.quickSettings,
                                             progress: SilentProgress())
        return (report, models, test)
    }

    // MARK: - Pareto front

    @Test func paretoFrontOfHandMadePoints() {
        // (cost, value): b dominates c (cheaper and better) and e (as good, cheaper);
        // a is cheapest, d most accurate, so a, b and d remain, sorted by cost.
        let costs = [1.0, 2.0, 3.0, 4.0, 2.5]
        let values = [0.5, 0.7, 0.6, 0.9, 0.7]
        #expect(ParetoFront.indices(costs: costs, values: values) == [0, 1, 3])
        // Equal points do not dominate each other.
        #expect(ParetoFront.indices(costs: [1, 1], values: [0.5, 0.5]) == [0, 1])
        #expect(ParetoFront.indices(costs: [], values: []) == [])
    }

    // MARK: - Measured values

    @Test func sizesAndCountsByHand() throws {
        let (report, paths, _) = try buildReport()
        try #require(report.models.map(\.label) == ["lenet300", "sparse", "lenet5"])
        for (m, file) in zip(report.models, paths) {
            let model = try ModelFile.read(path: file.path)
            #expect(m.fileBytes == (try statSize(file.path)))
            #expect(m.nonZeroParameters == nonZerosByLoop(model))
            // The tensor records are what the file loses when the initializers are dropped;
            // the graph's own length prefix may shrink by a few bytes as well.
            var bare = model
            bare.graph.initializers = [:]
            let tensorDelta = try ModelFile.encode(model).count - ModelFile.encode(bare).count
            #expect(m.tensorBytes <= tensorDelta && m.tensorBytes >= tensorDelta - 4, "\(m.tensorBytes) vs \(tensorDelta)")
            #expect(m.format == "native")
            #expect(m.layers.allSatisfy { $0.rank == nil })
        }
        // fc1 of the sparse variant: a run of 117,600 zeros, then 117,600 non-zeros. At b-bit gaps
        // that is 117,600 + (117,600 >> b) entries of 4 + b/8 bytes: 562,275 at 4 bits,
        // 560,896.9 at 5, 567,326.4 at 6 (farther widths cost more), so 5 bits; every other weight is dense.
        let encodings = report.models.map { $0.layers.map(\.encoding) }
        #expect(encodings[0].allSatisfy { $0 == "dense-float32" })
        #expect(encodings[1] == ["sparse-float32/5-bit", "dense-float32", "dense-float32"])
        #expect(encodings[2].allSatisfy { $0 == "dense-float32" })
        // lenet300: 784·300 + 300·100 + 100·10 multiply-accumulates, and as many weights, plus 300 + 100 + 10 biases.
        let lenet300Weights: Int = 784 * 300 + 300 * 100 + 100 * 10
        #expect(report.models[0].macsPerImage == lenet300Weights)
        #expect(report.models[0].weights == lenet300Weights)
        #expect(report.models[0].parameters == lenet300Weights + 300 + 100 + 10)
        #expect(report.models[1].parameters == report.models[0].parameters)
        // lenet5: conv1 20·1·5·5 on a 24x24 output, conv2 50·20·5·5 on 8x8, fc1 800·500, fc2 500·10.
        let lenet5MACs: Int = 24 * 24 * 20 * 25 + 8 * 8 * 50 * 20 * 25 + 800 * 500 + 500 * 10
        let lenet5Parameters: Int = 20 * 25 + 20 + 50 * 20 * 25 + 50 + 800 * 500 + 500 + 500 * 10 + 10
        #expect(report.models[2].macsPerImage == lenet5MACs)
        #expect(report.models[2].parameters == lenet5Parameters)
        // Biases start at zero; the sparse variant zeroes 117,600 of fc1's weights on top.
        #expect(report.models[1].nonZeroParameters == report.models[0].nonZeroParameters - 117_600)
    }

    /// x [2, 5, 5] -> conv (3 filters 2x3x3, stride 2, padding 1) -> ReLU -> flatten -> linear (27 -> 4),
    /// with every third conv weight and every fourth linear weight zero.
    static func tinyModel() -> Model {
        func values(_ count: Int, zeroEvery k: Int, seed: UInt64) -> [Float] {
            var rng = SeededGenerator(seed: seed)
            return (0..<count).map { i in i % k == 0 ? 0 : 0.1 + rng.nextUniform() }
        }
        let graph = Graph(
            inputs: [GraphInput(name: "x", sampleShape: [2, 5, 5])], outputs: ["y"],
            nodes: [
                Node(name: "conv", op: .conv2d(Conv2d(stride: .square(2), padding: .same(1))),
                     inputs: ["x", "conv.w", "conv.b"], output: "c"),
                Node(name: "relu", op: .relu, inputs: ["c"], output: "r"),
                Node(name: "flatten", op: .flatten(axis: 1), inputs: ["r"], output: "f"),
                Node(name: "fc", op: .linear, inputs: ["f", "fc.w", "fc.b"], output: "y"),
            ],
            initializers: [
                "conv.w": Tensor(shape: [3, 2, 3, 3], floats: values(54, zeroEvery: 3, seed: 1)),
                "conv.b": Tensor(shape: [3], floats: [0.5, -0.25, 0]),
                "fc.w": Tensor(shape: [4, 27], floats: values(108, zeroEvery: 4, seed: 2)),
                "fc.b": Tensor(shape: [4], floats: [1, 2, 3, 4]),
            ])
        return Model(graph: graph)
    }

    @Test func tinyHandBuiltModelByHand() throws {
        let path = (try temporaryDirectory() as NSString).appendingPathComponent("tiny.bin")
        try ModelFile.write(Self.tinyModel(), to: path)
        var rng = SeededGenerator(seed: 3)
        let test = LabeledImages(images: rng.uniformTensor([6, 2, 5, 5]), labels: [0, 1, 2, 3, 0, 1])
        let report = try ReportBuilder.build(models: [("tiny", path)], test: test, settings: Self.quickSettings,
                                             progress: SilentProgress())
        let m = try #require(report.models.first)
        #expect(m.fileBytes == (try statSize(path)))
        // Parameters: conv 3·2·3·3 = 54 weights + 3 biases, fc 4·27 = 108 weights + 4 biases.
        let parameters: Int = 54 + 3 + 108 + 4, weights: Int = 54 + 108
        #expect(m.parameters == parameters)
        #expect(m.weights == weights)
        // Zeros: 18 of the conv weights (indices 0, 3, ..., 51), one conv bias, 27 fc weights (0, 4, ..., 104).
        let nonZeros: Int = (54 - 18) + 2 + (108 - 27) + 4
        #expect(m.nonZeroParameters == nonZeros)
        // Output 3x3 ((5 + 2 - 3) / 2 + 1) per filter: 27 outputs of 2·3·3 = 18 MACs; fc 27·4.
        let macs: Int = 27 * 18 + 27 * 4
        #expect(m.macsPerImage == macs)
        #expect(m.layers.map(\.name) == ["conv", "fc"])
        #expect(m.layers.map(\.op) == ["Conv2d", "Linear"])
        #expect(m.layers.map(\.weightShape) == [[3, 2, 3, 3], [4, 27]])
        #expect(m.layers.map(\.parameters) == [57, 112])
        #expect(m.layers.map(\.nonZeros) == [38, 85])  // 36 + 2 and 81 + 4
        #expect(m.layers.map(\.macs) == [486, 108])
        let sparsities: [Double] = [18.0 / 54, 27.0 / 108]
        #expect(m.layers.count == 2 && zip(m.layers, sparsities).allSatisfy { abs($0.sparsity - $1) < 1e-12 },
                "\(m.layers.map(\.sparsity))")
        let accuracy = try #require(m.accuracy)
        let expected = try accuracyByLoop(Self.tinyModel(), images: test.images, labels: test.labels.map(Int.init))
        #expect(accuracy.images == 6)
        #expect(accuracy.top1 == expected.top1 && accuracy.top5 == expected.top5)
    }

    @Test func compressionRatioAndBitsPerWeightByHand() throws {
        let (report, paths, _) = try buildReport()
        let bytes = try paths.map { try #require(FileManager.default.attributesOfItem(atPath: $0.path)[.size] as? Int) }
        #expect(report.models[0].compressionRatio == 1)
        // Half of fc1 zero: its record falls from 940,830 bytes to about 561,000 (see above),
        // a third of the baseline's file of about 1.07 MB.
        #expect(report.models[1].compressionRatio == Double(bytes[0]) / Double(bytes[1]))
        #expect(report.models[1].compressionRatio > 1.5 && report.models[1].compressionRatio < 1.6)
        #expect(report.models[2].compressionRatio == Double(bytes[0]) / Double(bytes[2]))
        // fc1 [300, 784]: 940,800 data bytes in a bytes field (1 tag + 3 length bytes), that in a
        // dense message (1 + 3), plus the name "fc1.weight" (1 + 1 + 10) and the shape (1 + 1 + 2 + 2),
        // all in one record (1 + 3): 940,800 + 4 + 4 + 12 + 6 + 4 = 940,830 bytes.
        let model = try ModelFile.read(path: paths[0].path)
        let sizes = ModelFile.encodedTensorSizes(model)
        let fc1 = model.graph.nodes.first { $0.name == "fc1" }!.inputs[1]
        #expect(fc1 == "fc1.weight")
        #expect(sizes[fc1]?.bytes == 940_830)
        let storage = ["fc1", "fc2", "fc3"].map { n in sizes[model.graph.nodes.first { $0.name == n }!.inputs[1]]!.bytes }
        #expect(report.models[0].weightStorageBytes == storage.reduce(0, +))
        let bits = try #require(report.models[0].bitsPerWeight)
        #expect(bits == 8 * Double(storage.reduce(0, +)) / 266_200)
        #expect(bits > 32 && bits < 32.01)  // dense float32 plus a few bytes of framing per tensor
    }

    @Test func layerSparsityCountsZerosInTheWeight() throws {
        let (report, _, _) = try buildReport()
        let fc1 = try #require(report.models[1].layers.first { $0.name == "fc1" })
        #expect(fc1.weightShape == [300, 784])
        #expect(fc1.sparsity == 0.5)
        #expect(fc1.nonZeros == 235_200 - 117_600)  // the 300 biases start at zero
        #expect(report.models[0].layers.allSatisfy { $0.sparsity == 0 })
        #expect(report.models[2].layers.map(\.name) == ["conv1", "conv2", "fc1", "fc2"])
    }

    @Test func accuracyMatchesAPlainLoopAndChangeIsAgainstTheBaseline() throws {
        let (report, paths, test) = try buildReport()
        #expect(report.models.count == paths.count)
        for (m, file) in zip(report.models, paths) {
            let expected = try accuracyByLoop(try ModelFile.read(path: file.path), images: test.images, labels: test.labels.map(Int.init))
            let a = try #require(m.accuracy)
            #expect(a.images == 24 && a.top1 == expected.top1 && a.top5 == expected.top5, "\(m.label)")
            #expect(a.top1Change == a.top1 - report.models[0].accuracy!.top1)
        }
        #expect(report.settings.testImages == 24)
    }

    @Test func latencyCoversEveryConfigurationAndFrontsAreConsistent() throws {
        let (report, _, _) = try buildReport()
        for m in report.models {
            #expect(m.latency.map(\.batch) == [1, 4])
            #expect(m.latency.allSatisfy { $0.threads == 1 && $0.repetitions >= 2 && $0.medianMs > 0 })
        }
        // The fronts by brute force: a model is on one unless another costs no more, scores no
        // less, and is strictly better in one of the two; listed cheapest first.
        func front(_ cost: (ModelReport) -> Double) -> [String] {
            let m = report.models
            let kept = m.indices.filter { i in
                !m.indices.contains { j in
                    let (cj, ci) = (cost(m[j]), cost(m[i])), (vj, vi) = (m[j].accuracy!.top1, m[i].accuracy!.top1)
                    return cj <= ci && vj >= vi && (cj < ci || vj > vi)
                }
            }
            return kept.sorted { cost(m[$0]) < cost(m[$1]) }.map { m[$0].label }
        }
        #expect(report.paretoFronts.sizeVsAccuracy == front { Double($0.fileBytes) })
        #expect(report.paretoFronts.latencyVsAccuracy == front { $0.latency(batch: 1, threads: 1)!.medianMs })
        #expect(!report.paretoFronts.latencyVsAccuracy.isEmpty)
    }

    @Test func withoutTestDataAccuracyIsNull() throws {
        let models = try writeModels(in: try temporaryDirectory())
        let report = try ReportBuilder.build(models: Array(models.prefix(1)), test: nil, settings: Self.quickSettings,
                                             progress: SilentProgress())
        #expect(report.models[0].accuracy == nil)
        #expect(report.paretoFronts.sizeVsAccuracy.isEmpty)
        #expect(HTMLReport.render(report).contains("No accuracy measured"))
    }

    @Test func badInputsFailWithTheirName() throws {
        let dir = try temporaryDirectory()
        let missing = (dir as NSString).appendingPathComponent("missing.bin")
        #expect { try ReportBuilder.build(models: [("m", missing)], test: nil, settings: Self.quickSettings,
                                          progress: SilentProgress()) } throws: { error in
            String(describing: error).contains(missing)
        }
        let models = try writeModels(in: dir)
        let wrongShape = LabeledImages(images: .zeros([2, 1, 14, 14]), labels: [0, 1])
        #expect(throws: ReportError.inputShapeMismatch(label: "lenet300", modelShape: [1, 28, 28], dataShape: [1, 14, 14])) {
            try ReportBuilder.build(models: models, test: wrongShape, settings: Self.quickSettings,
                                    progress: SilentProgress())
        }
        #expect(throws: ReportError.noModels) {
            try ReportBuilder.build(models: [], test: nil, settings: Self.quickSettings, progress: SilentProgress())
        }
    }

    // MARK: - Documents

    @Test func writerWritesThreeDocumentsThatExplainThemselves() throws {
        let (report, _, _) = try buildReport()
        let dir = (try temporaryDirectory() as NSString).appendingPathComponent("nested/out")
        try ReportWriter.write(report, to: dir)
        func read(_ name: String) throws -> String {
            try String(contentsOfFile: (dir as NSString).appendingPathComponent(name), encoding: .utf8)
        }
        let json = try read("report.json"), markdown = try read("report.md"), html = try read("report.html")

        let decoded = try ReportWriter.decode(json: Data(json.utf8))
        #expect(decoded == report)
        #expect(decoded.schemaVersion == ComparisonReport.currentSchemaVersion)
        #expect(ComparisonReport.currentSchemaVersion == 1)
        let object = try #require(try JSONSerialization.jsonObject(with: Data(json.utf8)) as? [String: Any])
        let definitions = try #require(object["definitions"] as? [String: String])
        #expect(Set(definitions.keys) == Set(ReportDefinitions.all.map(\.field)))
        let layer = try #require(((object["models"] as? [[String: Any]])?.first?["layers"] as? [[String: Any]])?.first)
        #expect(layer["rank"] is NSNull)  // present as null, not left out

        #expect(markdown.contains("## Definitions"))
        #expect(markdown.contains("## Measurement settings"))
        for d in ReportDefinitions.all { #expect(markdown.contains("**\(d.title)**")) }
        #expect(markdown.contains("| lenet300 | "))

        // Five charts, each an inline <svg>: accuracy per model, size and latency vs accuracy,
        // layer bytes, layer sparsity.
        #expect(html.components(separatedBy: "<svg").count - 1 == 5)
        #expect(!html.contains("http"))
        #expect(!html.contains("<script"))
        #expect(html.contains("Pareto front"))
        for d in ReportDefinitions.all { #expect(html.contains(HTMLReport.withCode(d.text))) }
        #expect(html.contains("<code>compressor bench</code>"))
    }

    // MARK: - Weight storage per layer

    /// `tinyModel` with every weight drawn from a few values (most of them one
    /// value), both weights weight-shared, Huffman coding allowed.
    static func sharedHuffmanModel() -> Model {
        var m = tinyModel()
        let levels: [Float] = [0.5, 0.5, 0.5, 0.5, 0.5, 0.5, -0.25, 0.75, 0.5, -1]
        for name in ["conv.w", "fc.w"] {
            let t = m.graph.initializers[name]!
            m.graph.initializers[name] = Tensor(shape: t.shape, floats: t.floats.enumerated().map { i, v in
                v == 0 ? 0 : levels[(i * 7) % levels.count]
            })
        }
        m.metadata.storage = StorageOptions(sharedTensors: ["conv.w", "fc.w"], huffman: true)
        return m
    }

    /// `tinyModel` with its input quantized to uint8, the conv weight on a
    /// per-tensor int8 grid and the linear weight rounded to float16.
    static func quantizedTinyModel() -> Model {
        var m = tinyModel()
        let q = ActivationQuantization(scale: 1.0 / 255, zeroPoint: 0, signed: false)
        m.graph.nodes.insert(Node(name: "x.quantize", op: .quantizeDequantize(q), inputs: ["x"], output: "xq"), at: 0)
        m.graph.nodes[1].inputs[0] = "xq"
        let w = m.graph.initializers["conv.w"]!
        let grid = QuantizationGrid.fitted(to: w.floats, shape: w.shape, axis: nil, qmin: -127, qmax: 127, symmetric: true)
        m.graph.initializers["conv.w"] = Tensor(shape: w.shape, floats: grid.fakeQuantize(w.floats, shape: w.shape))
        let f = m.graph.initializers["fc.w"]!
        m.graph.initializers["fc.w"] = Tensor(shape: f.shape, floats: f.floats.map(\.roundedToFloat16))
        m.metadata.storage.precisions = ["conv.w": .int8(grid), "fc.w": .float16]
        return m
    }

    @Test func layersSayWhatTheyComputeIn() throws {
        let path = (try temporaryDirectory() as NSString).appendingPathComponent("quantized.bin")
        let model = Self.quantizedTinyModel()
        try ModelFile.write(model, to: path)
        let report = try ReportBuilder.build(models: [("q", path)], test: nil, settings: Self.quickSettings,
                                             progress: SilentProgress())
        #expect(report.models[0].layers.map(\.computes) == ["int8 x uint8", "float32 (float16 weights)"])
        #expect(report.models[0].layers.map(\.encoding) == ["dense-int8/per-tensor", "dense-float16"])
        // Without the input quantizer the int8 weight is only dequantized.
        var weightOnly = model
        weightOnly.graph.nodes.removeFirst()
        weightOnly.graph.nodes[0].inputs[0] = "x"
        let conv = weightOnly.graph.nodes[0]
        #expect(weightOnly.graph.computePrecision(of: conv, precisions: model.metadata.storage.precisions)
                == "float32 (int8 weights)")
        #expect(weightOnly.graph.computePrecision(of: conv, precisions: [:]) == "float32")
        // An int8 input grid, reached through flatten, is named as such.
        var signed = model
        signed.graph.nodes[0].op = .quantizeDequantize(ActivationQuantization(scale: 0.01, zeroPoint: 0, signed: true))
        #expect(signed.graph.computePrecision(of: signed.graph.nodes[1], precisions: model.metadata.storage.precisions)
                == "int8 x int8")
    }

    @Test func perLayerBitsAreWhatTheSharedHelperComputes() throws {
        let dir = try temporaryDirectory()
        let model = Self.sharedHuffmanModel()
        var plainModel = model
        plainModel.metadata.storage.huffman = false
        let path = (dir as NSString).appendingPathComponent("shared.bin")
        let plainPath = (dir as NSString).appendingPathComponent("plain.bin")
        try ModelFile.write(model, to: path)
        try ModelFile.write(plainModel, to: plainPath)
        let report = try ReportBuilder.build(models: [("plain", plainPath), ("shared", path)], test: nil,
                                             settings: Self.quickSettings, progress: SilentProgress())
        let (plain, shared) = (report.models[0], report.models[1])
        let costs = ModelFile.storageCosts(of: ["conv.w", "fc.w"], in: model)
        try #require(shared.layers.map(\.weightTensor) == ["conv.w", "fc.w"] && costs.count == 2)
        let sizes = ModelFile.encodedTensorSizes(model)
        for (layer, cost) in zip(shared.layers, costs) {
            #expect(layer.encoding == cost.encoding && layer.weightBytes == cost.bytes)
            #expect(layer.bitsPerWeight == cost.bitsPerWeight && layer.bitsPerNonZero == cost.bitsPerNonZero)
            #expect(layer.weightBytes == sizes[cost.tensor]?.bytes)
            #expect(layer.encoding.contains("codebook/") && layer.encoding.contains("+huffman"), "\(layer.encoding)")
            // Bits per non-zero × non-zeros / 8 and bits per weight × weights / 8 give the bytes back.
            let weights = model.graph.initializers[cost.tensor]!.count
            let nonZeros = weights - zerosByLoop(model.graph.initializers[cost.tensor]!)
            #expect(cost.weights == weights && cost.nonZeros == nonZeros)
            #expect(abs(layer.bitsPerNonZero * Double(nonZeros) / 8 - Double(layer.weightBytes)) < 1e-9)
            #expect(abs(layer.bitsPerWeight * Double(weights) / 8 - Double(layer.weightBytes)) < 1e-9)
            // Without Huffman: what the same model takes with Huffman coding turned off.
            let without = try #require(layer.withoutHuffman)
            let plainLayer = try #require(plain.layers.first { $0.weightTensor == layer.weightTensor })
            #expect(without.encoding == plainLayer.encoding && without.bytes == plainLayer.weightBytes)
            #expect(without.bitsPerNonZero == plainLayer.bitsPerNonZero && without.bitsPerWeight == plainLayer.bitsPerWeight)
            #expect(!without.encoding.contains("+huffman") && without.bytes >= layer.weightBytes)
            #expect(cost.withoutHuffman == EncodedTensorSize(encoding: without.encoding, bytes: without.bytes))
        }
        #expect(plain.layers.allSatisfy { $0.withoutHuffman == nil })
        // Not shared: a third (conv) and a quarter (fc) of the weights are zero, so both are stored
        // sparse, each non-zero as a float32 value and a gap: more than 32 bits a non-zero, fewer a weight.
        let unshared = try ReportBuilder.build(models: [("tiny", try writeTiny(in: dir))], test: nil,
                                               settings: Self.quickSettings, progress: SilentProgress())
        for l in unshared.models[0].layers {
            #expect(l.encoding.hasPrefix("sparse-float32/") && l.bitsPerNonZero > 32 && l.bitsPerWeight < 32,
                    "\(l.name): \(l.encoding) \(l.bitsPerWeight) \(l.bitsPerNonZero)")
        }

        let markdown = MarkdownReport.render(report), html = HTMLReport.render(report)
        let fc = shared.layers[1]
        for doc in [markdown, html] {
            #expect(doc.contains("without Huffman") && doc.contains(fc.encoding) && doc.contains(fc.withoutHuffman!.encoding))
            #expect(doc.contains(String(format: "%.2f", fc.bitsPerNonZero)))
            #expect(doc.contains(String(format: "%.2f", fc.withoutHuffman!.bitsPerNonZero)))
        }
        let json = try #require(try JSONSerialization.jsonObject(with: Data(try ReportWriter.json(report).utf8)) as? [String: Any])
        let layers = try #require((json["models"] as? [[String: Any]])?.map { $0["layers"] as? [[String: Any]] })
        #expect(layers[0]?.first?["withoutHuffman"] is NSNull)
        #expect((layers[1]?.last?["withoutHuffman"] as? [String: Any])?["bytes"] as? Int == fc.withoutHuffman!.bytes)
    }

    func writeTiny(in dir: String) throws -> String {
        let path = (dir as NSString).appendingPathComponent("tiny.bin")
        try ModelFile.write(Self.tinyModel(), to: path)
        return path
    }

    // MARK: - Validation accuracy and the per-model chart

    /// Images whose labels are what `model` predicts (`agree`), or the next class.
    func labeled(by model: Model, count: Int, seed: UInt64, agree: Bool) throws -> LabeledImages {
        var rng = SeededGenerator(seed: seed)
        let images = rng.uniformTensor([count, 2, 5, 5])
        let logits = try ReferenceEvaluator.run(model: model, input: images).floats
        let classes = logits.count / count
        let labels = (0..<count).map { i -> Int32 in
            let row = logits[(i * classes)..<((i + 1) * classes)]
            let best = row.indices.max { row[$0] < row[$1] }! - i * classes
            return Int32(agree ? best : (best + 1) % classes)
        }
        return LabeledImages(images: images, labels: labels)
    }

    @Test func validationAccuracyIsMeasuredOnItsOwnSplit() throws {
        let dir = try temporaryDirectory()
        let tiny = try writeTiny(in: dir)
        var other = Self.tinyModel()
        other.graph.initializers["fc.w"] = Tensor(shape: [4, 27], floats: (0..<108).map { Float(($0 * 5) % 11) / 10 - 0.5 })
        let otherPath = (dir as NSString).appendingPathComponent("other.bin")
        try ModelFile.write(other, to: otherPath)
        // Test labels agree with the baseline's predictions, validation labels never do.
        let model = Self.tinyModel()
        let test = try labeled(by: model, count: 10, seed: 11, agree: true)
        let validation = try labeled(by: model, count: 7, seed: 12, agree: false)
        let report = try ReportBuilder.build(models: [("tiny", tiny), ("other", otherPath)], test: test,
                                             validation: validation, settings: Self.quickSettings,
                                             progress: SilentProgress())
        #expect(report.settings.testImages == 10 && report.settings.validationImages == 7)
        let base = try #require(report.models[0].validationAccuracy)
        #expect(report.models[0].accuracy?.top1 == 1 && base.top1 == 0 && base.images == 7)
        for (m, path) in zip(report.models, [tiny, otherPath]) {
            let v = try #require(m.validationAccuracy), t = try #require(m.accuracy)
            let expected = try accuracyByLoop(try ModelFile.read(path: path), images: validation.images,
                                              labels: validation.labels.map(Int.init))
            #expect(v.top1 == expected.top1 && v.top5 == expected.top5, "\(m.label)")
            #expect((0...1).contains(v.top1) && (0...1).contains(v.top5) && (0...1).contains(t.top1))
            #expect(v.top1Change == v.top1 - base.top1 && v.top5Change == v.top5 - base.top5)
        }
        // Without a validation split nothing is measured on it.
        let plain = try ReportBuilder.build(models: [("tiny", tiny)], test: test, settings: Self.quickSettings,
                                            progress: SilentProgress())
        #expect(plain.models[0].validationAccuracy == nil && plain.settings.validationImages == nil)
        #expect(!MarkdownReport.render(plain).contains("validation top-1"))
        #expect(throws: ReportError.self) {
            try ReportBuilder.build(models: [("tiny", tiny)], test: test, validation: .empty(sampleShape: [2, 5, 5]),
                                    settings: Self.quickSettings, progress: SilentProgress())
        }

        let markdown = MarkdownReport.render(report)
        #expect(markdown.contains("| validation top-1 | Δ validation top-1 | top-1 |"))
        #expect(markdown.contains("| tiny | ") && markdown.contains("| 0.00% | +0.00 pp | 100.00% |"))
        // The sweep chart: one marker per model in each series, in the order given.
        let html = HTMLReport.render(report)
        #expect(html.contains("Top-1 accuracy per model"))
        for series in ["validation top-1", "test top-1"] {
            #expect(html.components(separatedBy: "data-series=\"\(series)\"").count - 1 == report.models.count)
            for m in report.models {
                let value = series == "test top-1" ? m.accuracy!.top1 : m.validationAccuracy!.top1
                #expect(html.contains("<title>\(m.label), \(series): \(ReportFormat.percent(value))</title>"))
            }
        }
        // One line per series through its two points.
        let chart = try #require(html.components(separatedBy: "aria-label=\"Top-1 accuracy per model").last?
            .components(separatedBy: "</svg>").first)
        #expect(chart.components(separatedBy: "<polyline").count - 1 == 2)
        let decoded = try ReportWriter.decode(json: Data(try ReportWriter.json(report).utf8))
        #expect(decoded == report)
    }

    @Test func axisTicksAreRoundAndInsideTheRange() {
        let axis = Axis(values: [0.81, 0.93], log: false, padding: 0.1)
        let ticks = axis.ticks()
        #expect(ticks.count >= 3 && ticks.count <= 11)
        #expect(ticks.allSatisfy { axis.unit($0) >= -1e-9 && axis.unit($0) <= 1 + 1e-9 })
        #expect(Axis.niceStep(0.023) == 0.02)
        #expect(Axis.niceStep(4.2) == 5)
    }

    @Test func labelsThatWouldOverlapAreMovedApart() {
        let ys = SVGCharts.labelPositions([(100, 50), (102, 50), (400, 50)])
        #expect(ys == [50, 65, 50])
    }
}

/// docs/report-schema.md documents every field the JSON has.
@Suite struct ReportSchemaDocTests {
    /// Every key of every object in `value`, recursively.
    func keys(of value: Any) -> Set<String> {
        if let object = value as? [String: Any] {
            return object.reduce(into: Set(object.keys)) { acc, entry in
                // The definitions' keys are metric names, documented as a list.
                if entry.key != "definitions" { acc.formUnion(keys(of: entry.value)) }
            }
        }
        if let array = value as? [Any] { return array.reduce(into: Set()) { $0.formUnion(keys(of: $1)) } }
        return []
    }

    @Test func schemaDocumentNamesEveryField() throws {
        let (report, _, _) = try ReportTests().buildReport()
        let json = try JSONSerialization.jsonObject(with: Data(try ReportWriter.json(report).utf8))
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent()
        let doc = try String(contentsOf: root.appendingPathComponent("docs/report-schema.md"), encoding: .utf8)
        #expect(doc.contains("schemaVersion \(ComparisonReport.currentSchemaVersion)"))
        for key in keys(of: json).sorted() {
            #expect(doc.contains("`\(key)`") || doc.contains("`machine.\(key)`"), "docs/report-schema.md lacks `\(key)`")
        }
        for d in ReportDefinitions.all { #expect(doc.contains("`\(d.field)`")) }
    }
}

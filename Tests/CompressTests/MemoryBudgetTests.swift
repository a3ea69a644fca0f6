import Foundation
import Testing
@testable import Compress

@Suite struct MemoryBudgetTests {
    @Test func parsesSizes() throws {
        #expect(try MemoryBudget(parsing: "1000000").bytes == 1_000_000)
        #expect(try MemoryBudget(parsing: "512MB").bytes == 512_000_000)
        #expect(try MemoryBudget(parsing: "1.5GB").bytes == 1_500_000_000)
        #expect(try MemoryBudget(parsing: "2GiB").bytes == 2 << 30)
        #expect(try MemoryBudget(parsing: "2G").bytes == 2 << 30)
        #expect(try MemoryBudget(parsing: "64 KiB").bytes == 65536)
        #expect(try MemoryBudget(parsing: "3kb").bytes == 3000)
        let half = try MemoryBudget(parsing: "50%")
        #expect(half.bytes == MemoryBudget.availableMemory / 2)
        #expect(half.origin.hasPrefix("50% of this machine's"))
        for bad in ["", "abc", "-1GB", "0", "12XB", "150%", "0%", "1e30GB", "GB"] {
            #expect(throws: MemoryBudgetParseError.self) { try MemoryBudget(parsing: bad) }
        }
    }

    @Test func formatsBinaryUnits() {
        #expect(MemoryBudget.format(bytes: 512) == "512 B")
        #expect(MemoryBudget.format(bytes: 1536) == "1.5 KiB")
        #expect(MemoryBudget.format(bytes: 43_200_000_000) == "40.2 GiB")
    }

    @Test func refusesNamingTheLargestTensor() throws {
        let input = MemoryNeed.TensorSize(name: "input", shape: [1, 3, 60000, 60000],
                                          bytes: MemoryNeed.bytes(elements: [1, 3, 60000, 60000], elementSize: 4))
        #expect(input.bytes == 43_200_000_000)
        let need = MemoryNeed(purpose: "running batch 1 of huge.onnx",
                              tensors: [MemoryNeed.TensorSize(name: "w", shape: [4, 3, 3, 3], bytes: 432), input])
        #expect(need.bytes == 43_200_000_432)
        let budget = MemoryBudget(bytes: 1 << 30, origin: "--max-memory 1GiB")
        let error = #expect(throws: MemoryBudgetExceeded.self) { try budget.check(need) }
        #expect(error?.description == "running batch 1 of huge.onnx needs 40.2 GiB of memory (largest tensor: 'input' 1x3x60000x60000, 40.2 GiB), "
                + "more than the memory budget of 1.0 GiB (--max-memory 1GiB); raise it with --max-memory if the machine has the memory")
        try MemoryBudget(bytes: 43_200_000_432).check(need)
    }

    @Test func saturatesDeclaredSizes() {
        #expect(MemoryNeed.bytes(elements: [1 << 40, 1 << 40], elementSize: 4) == Int.max)
        #expect(MemoryNeed.bytes(elements: [-1, 3], elementSize: 4) == Int.max)
        let need = MemoryNeed(purpose: "x", tensors: [.init(name: "a", shape: [], bytes: Int.max), .init(name: "b", shape: [], bytes: 8)])
        #expect(need.bytes == Int.max)
    }

    @Test func machineDefaultIsAShareOfMemory() {
        let budget = MemoryBudget.machineDefault
        #expect(MemoryBudget.availableMemory > 0)
        #expect(budget.bytes == Int(Double(MemoryBudget.availableMemory) * MemoryBudget.defaultFraction))
    }
}

/// The budget checked where memory is planned: the graph's lower bound, the
/// runtime's batch plans, the training step, and the sizes files declare.
@Suite struct MemoryBudgetPlanningTests {
    /// Conv 3->4 (3x3, padding 1) + global average pool + flatten + linear 4->10
    /// on 3 x side x side images: the issue's 60000 x 60000 model when `side` is 60000.
    static func wideModel(side: Int) -> Model {
        var b = GraphBuilder(sampleShape: [3, side, side], seed: 0)
        b.conv("conv", out: 4, kernel: 3, padding: 1)
        b.add("pool", .globalAvgPool)
        b.add("flat", .flatten(axis: 1))
        b.linear("fc", out: 10)
        return b.model(architecture: .lenet5, seed: 0, classes: 10)
    }

    static let gib = MemoryBudget(bytes: 1 << 30, origin: "--max-memory 1GiB")

    @Test func graphLowerBoundNamesTheLargestValue() throws {
        let model = Self.wideModel(side: 60000)
        let need = try model.inferenceMemoryNeed(batch: 1)
        let input = 3 * 60000 * 60000 * 4, conv = 4 * 60000 * 60000 * 4
        let weights = (4 * 3 * 3 * 3 + 4 + 10 * 4 + 10) * 4
        // Weights, the caller's input and logits, and the conv's input and output together.
        #expect(need.bytes == weights + input + 10 * 4 + input + conv)
        #expect(need.largest == MemoryNeed.TensorSize(name: "conv", shape: [1, 4, 60000, 60000], bytes: conv))
        let refusal = #expect(throws: MemoryBudgetExceeded.self) { try Session(model: model, memoryBudget: Self.gib) }
        #expect(refusal?.description == "inference at batch 1 needs 134.1 GiB of memory (largest tensor: 'conv' 1x4x60000x60000, "
                + "53.6 GiB), more than the memory budget of 1.0 GiB (--max-memory 1GiB); raise it with --max-memory if the machine has the memory")
        #expect(throws: MemoryBudgetExceeded.self) { try TrainingGraph(model: model, memoryBudget: Self.gib) }
        #expect(throws: MemoryBudgetExceeded.self) { try model.checkInferenceMemory(budget: Self.gib) }
    }

    /// A budget one image fits but a large batch does not: the batch plan refuses before allocating,
    /// layer by layer and image by image, and the session stays usable for the batch that fits.
    @Test func batchPlansRefuseWhatDoesNotFit() throws {
        let model = Self.wideModel(side: 32)
        let budget = MemoryBudget(bytes: 4 * (try model.inferenceMemoryNeed(batch: 1)).bytes, origin: "test")
        for imageWise in [false, true] {
            let session = try Session(model: model, threads: 2, kernels: .processDefault, imageWise: imageWise,
                                      memoryBudget: budget)
            try session.prepare(batch: 1)
            let refusal = #expect(throws: MemoryBudgetExceeded.self) { try session.prepare(batch: 256) }
            #expect(refusal?.need.purpose == "inference at batch 256")
            #expect(refusal?.need.largest?.name == "conv")
            #expect(refusal?.need.largest?.shape == [256, 4, 32, 32])
            #expect((refusal?.need.bytes ?? 0) > budget.bytes)
            let logits = try session.run(Tensor(shape: [1, 3, 32, 32], floats: [Float](repeating: 0.5, count: 3 * 32 * 32)))
            #expect(logits.shape == [1, 10])
        }
        // The benchmark plans before it builds its random batch.
        let session = try Session(model: model, memoryBudget: budget)
        #expect(throws: MemoryBudgetExceeded.self) { try LatencyBenchmark(minRepetitions: 1, minSeconds: 0).measure(session, batch: 256) }
    }

    @Test func trainingStepRefusesWhatDoesNotFit() throws {
        let model = Self.wideModel(side: 32)
        let budget = MemoryBudget(bytes: 8 * (try model.inferenceMemoryNeed(batch: 1)).bytes, origin: "test")
        let graph = try TrainingGraph(model: model, memoryBudget: budget)
        let fits = try graph.stepBytes(batch: 1)
        #expect(fits <= budget.bytes)
        let refusal = #expect(throws: MemoryBudgetExceeded.self) { try graph.stepBytes(batch: 256) }
        #expect(refusal?.need.purpose == "a training step at batch 256")
        #expect(refusal?.need.largest?.shape == [256, 4, 32, 32])
        // Values and their gradients: at least twice the conv output.
        #expect((refusal?.need.bytes ?? 0) >= 2 * 256 * 4 * 32 * 32 * 4)
        #expect(throws: MemoryBudgetExceeded.self) {
            _ = try graph.forward(Tensor(shape: [256, 3, 32, 32], floats: [Float](repeating: 0, count: 256 * 3 * 32 * 32)), training: true)
        }
    }

    /// A model whose file is small (a sparse all-zero tensor) but whose declared dense size is not.
    static func sparseModel() -> Model {
        var model = wideModel(side: 8)
        model.graph.initializers["big"] = .zeros([1000, 1000])
        return model
    }

    @Test func nativeLoaderChecksDeclaredSizes() throws {
        let bytes = try ModelFile.encode(Self.sparseModel())
        #expect(bytes.count < 4096)
        let budget = MemoryBudget(bytes: 1_000_000, origin: "--max-memory 1MB")
        let refusal = #expect(throws: ModelFileError.self) { try ModelFile.decode(bytes, budget: budget) }
        guard case .exceedsMemoryBudget(let e)? = refusal else { Issue.record("got \(String(describing: refusal))"); return }
        #expect(e.need.largest == MemoryNeed.TensorSize(name: "big", shape: [1000, 1000], bytes: 4_000_000))
        #expect(refusal?.description.hasPrefix("loading the model's tensors needs 3.8 MiB of memory (largest tensor: 'big' 1000x1000, 3.8 MiB)") == true)
        #expect(throws: ModelFileError.self) { try ModelLoader.decode(bytes, budget: budget) }
        #expect(try ModelFile.decode(bytes, budget: MemoryBudget(bytes: 5_000_000)) == Self.sparseModel())
    }

    @Test func onnxLoaderChecksDeclaredSizes() throws {
        let model = Self.wideModel(side: 8)
        let bytes = try ONNXExporter.encode(model)
        let refusal = #expect(throws: ONNXImportError.self) { try ONNXImporter.decode(bytes, budget: MemoryBudget(bytes: 100)) }
        guard case .exceedsMemoryBudget(let e)? = refusal else { Issue.record("got \(String(describing: refusal))"); return }
        #expect(e.need.purpose == "loading the model's initializers")
        #expect(e.need.largest?.bytes == 4 * 3 * 3 * 3 * 4)
        #expect(throws: ONNXImportError.self) { try ModelLoader.decode(bytes, budget: MemoryBudget(bytes: 100)) }
        _ = try ONNXImporter.decode(bytes, budget: MemoryBudget(bytes: 100_000))
    }

    /// Two small constants whose broadcast product is large: the folding is refused, naming the node.
    @Test func onnxConstantFoldingChecksTheBudget() throws {
        var spec = try ONNXModelSpec(Model(graph: RuntimeFixtures.singleOp(.relu, sample: [4])), opset: 13)
        spec.nodes.insert(ONNXNodeSpec(name: "outer", opType: "Mul", inputs: ["a", "b"], outputs: ["outer"]), at: 0)
        spec.initializers = [("a", ONNXTensorData(shape: [1000, 1], values: .float([Float](repeating: 1, count: 1000)))),
                             ("b", ONNXTensorData(shape: [1, 1000], values: .float([Float](repeating: 2, count: 1000))))]
        let bytes = try ONNXProtoEncoder.bytes(of: spec)
        let refusal = #expect(throws: ONNXImportError.self) { try ONNXImporter.decode(bytes, budget: MemoryBudget(bytes: 1_000_000)) }
        #expect(refusal?.description.contains("folding constants needs 22.9 MiB of memory (largest tensor: 'outer' 1000x1000, 7.6 MiB)") == true,
                "\(String(describing: refusal))")
        #expect(try ONNXImporter.decode(bytes, budget: MemoryBudget(bytes: 30_000_000)).graph.nodes.map(\.op) == [.relu])
    }

    /// An NPY header declaring the 60000 x 60000 input, without its data: the budget refuses before the length check.
    @Test func dataReadersCheckDeclaredSizes() throws {
        var header = "{'descr': '<f4', 'fortran_order': False, 'shape': (1, 3, 60000, 60000), }"
        header += String(repeating: " ", count: (64 - (10 + header.utf8.count + 1) % 64) % 64) + "\n"
        let npy = NPY.magic + [1, 0, UInt8(header.utf8.count & 0xFF), UInt8(header.utf8.count >> 8)] + Array(header.utf8)
        let refusal = #expect(throws: DataError.self) { try NPY.decode(npy, source: "x.npy", budget: Self.gib) }
        #expect(refusal?.description == "reading x.npy needs 40.2 GiB of memory (largest tensor: 'x.npy' 1x3x60000x60000, 40.2 GiB), "
                + "more than the memory budget of 1.0 GiB (--max-memory 1GiB); raise it with --max-memory if the machine has the memory")
        // Within the budget the same file is only truncated.
        #expect(throws: DataError.truncated(path: "x.npy", expectedBytes: npy.count + 43_200_000_000, actualBytes: npy.count)) {
            try NPY.decode(npy, source: "x.npy", budget: MemoryBudget(bytes: Int.max))
        }
        // IDX: float32 (0x0D), rank 3, 60000 x 60000 x 3.
        var idx: [UInt8] = [0, 0, 0x0D, 3]
        for d: UInt32 in [60000, 60000, 3] { idx += withUnsafeBytes(of: d.bigEndian) { Array($0) } }
        let idxRefusal = #expect(throws: DataError.self) { try IDX.decode(idx, source: "x.idx", budget: Self.gib) }
        guard case .exceedsMemoryBudget(let e)? = idxRefusal else { Issue.record("got \(String(describing: idxRefusal))"); return }
        #expect(e.need.bytes == 43_200_000_000)
    }

    /// uint8 pixels widen to float32 (4x) only when the widened images fit beside the bytes.
    @Test func datasetPixelsWidenWithinTheBudget() throws {
        let bytes = try Tensor(shape: [100, 1, 28, 28], storage: .uint8([UInt8](repeating: 255, count: 78_400)))
        let labels = [Int32](repeating: 0, count: 100)
        let refusal = #expect(throws: DataError.self) {
            try DatasetLoader.scaledImages(bytes, samples: 0..<100, source: "x.idx", labels: labels, budget: MemoryBudget(bytes: 300_000))
        }
        guard case .exceedsMemoryBudget(let e)? = refusal else { Issue.record("got \(String(describing: refusal))"); return }
        #expect(e.need.bytes == 78_400 + 313_600)
        #expect(e.need.largest == MemoryNeed.TensorSize(name: "x.idx", shape: [100, 1, 28, 28], bytes: 313_600))
        let images = try DatasetLoader.scaledImages(bytes, samples: 0..<100, source: "x.idx", labels: labels,
                                                    budget: MemoryBudget(bytes: 400_000))
        #expect(images.images.floats.allSatisfy { $0 == 1 })
    }

    /// A gzip file that inflates past the budget is refused as it inflates.
    @Test func gzipInflationStopsAtTheBudget() throws {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("budget-\(UUID().uuidString).idx.gz").path
        defer { try? FileManager.default.removeItem(atPath: path) }
        try IDX.write(Tensor(shape: [4_000_000], storage: .uint8([UInt8](repeating: 0, count: 4_000_000))), path: path, gzip: true)
        let fileSize = try #require(try FileManager.default.attributesOfItem(atPath: path)[.size] as? Int)
        #expect(fileSize < 100_000)
        let refusal = #expect(throws: DataError.self) { try IDX.read(path: path, budget: MemoryBudget(bytes: 1_000_000)) }
        guard case .exceedsMemoryBudget(let e)? = refusal else { Issue.record("got \(String(describing: refusal))"); return }
        #expect(e.need.purpose == "reading \(path)")
        #expect(e.need.bytes > 1_000_000)
        #expect(try IDX.read(path: path, budget: MemoryBudget(bytes: 5_000_000)).shape == [4_000_000])
    }
}

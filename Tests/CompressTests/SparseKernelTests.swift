import Testing
@testable import Compress
import SIMDKernels

/// Sparse kernels for pruned conv and linear layers: the CSR format, the AVX2
/// kernels against the plain-Swift ones, and sessions with sparse layers
/// against the reference evaluator and the dense path, on seeded random inputs
/// at several sparsities. Tolerance: `1e-5 * (1 + max|expected|)` element by
/// element (sums of up to a few hundred products in a different order).
///
/// Timing-based choices (`.auto`) appear only where the outputs cannot depend
/// on them, or with a stand-in timer that decides which candidate is faster.
@Suite struct SparseKernelTests {
    typealias F = RuntimeFixtures
    static let tolerance: Float = 1e-5
    static let sparsities = [0.0, 0.5, 0.9, 0.99, 1.0]

    /// `t` with its `sparsity` fraction of smallest-magnitude elements zeroed,
    /// and rows (leading index) listed in `emptyRows` zeroed entirely.
    static func pruned(_ t: Tensor, sparsity: Double, emptyRows: [Int] = []) -> Tensor {
        var values = t.floats
        let zeroCount = Int((sparsity * Double(values.count)).rounded())
        for i in values.indices.sorted(by: { abs(values[$0]) < abs(values[$1]) }).prefix(zeroCount) { values[i] = 0 }
        let rowLength = values.count / max(t.shape[0], 1)
        for r in emptyRows where r < t.shape[0] {
            for i in r * rowLength..<(r + 1) * rowLength { values[i] = 0 }
        }
        return Tensor(shape: t.shape, floats: values)
    }

    /// Seeded Gaussian inputs for every graph input.
    static func inputs(_ graph: Graph, batch: Int, seed: UInt64 = 1) -> [String: Tensor] {
        var rng = SeededGenerator(seed: seed)
        var inputs: [String: Tensor] = [:]
        for input in graph.inputs { inputs[input.name] = rng.gaussianTensor([batch] + input.sampleShape) }
        return inputs
    }

    /// Whether a session with `policy` (AVX2 kernels or plain Swift) matches the
    /// reference evaluator on every output, image by image and layer by layer.
    static func matchesReference(_ graph: Graph, batch: Int, policy: SparseKernelPolicy, vectorized: Bool,
                                 sparseNodes: Set<String>? = nil, threads: Int = 1) throws -> Bool {
        let inputs = inputs(graph, batch: batch)
        let reference = try ReferenceEvaluator.run(graph, inputs: inputs)
        for imageWise in [true, false] {
            let session = try Session(model: Model(graph: graph), threads: threads, kernels: vectorized ? .avx2 : .portable,
                                      imageWise: imageWise, sparseKernels: policy, sparseNodes: sparseNodes)
            let fast = try session.run(inputs: inputs)
            guard graph.outputs.allSatisfy({ F.isClose(fast[$0]!, reference[$0]!, relative: tolerance) }) else { return false }
        }
        return true
    }

    // MARK: The format

    @Test func compressedRowsKeepEveryNonZeroInOrder() {
        let dense: [Float] = [0, 2, 0, 0,
                              0, 0, 0, 0,
                              1, 0, 0, -3]
        let m = CompressedSparseRows(dense: dense, rows: 3, columns: 4)
        #expect(m.rowOffsets == [0, 1, 1, 3])
        #expect(m.values == [2, 1, -3])
        #expect((0..<3).map(m.column) == [1, 0, 3])
        #expect(m.density == 0.25)
        guard case .narrow = m.columnIndices else { Issue.record("4 columns should have 16-bit indices"); return }
    }

    @Test func moreThan65536ColumnsGetWideIndices() {
        var dense = [Float](repeating: 0, count: 2 * 70_000)
        dense[69_999] = 1; dense[70_000 + 65_536] = 2
        let m = CompressedSparseRows(dense: dense, rows: 2, columns: 70_000)
        guard case .wide = m.columnIndices else { Issue.record("70,000 columns need 32-bit indices"); return }
        #expect((0..<2).map(m.column) == [69_999, 65_536])
        #expect(SlicedSparseRows(m, bias: nil) == nil)
        let exactly = CompressedSparseRows(dense: [Float](repeating: 1, count: 65_536), rows: 1, columns: 65_536)
        guard case .narrow = exactly.columnIndices else { Issue.record("65,536 columns fit 16 bits"); return }
    }

    /// Every non-zero appears once in its row's lane; padding lanes are zero; rows are longest first.
    @Test func slicedRowsHoldTheSameMatrix() {
        let weight = Self.pruned(F.weights([21, 13], seed: 3), sparsity: 0.6, emptyRows: [4, 20])
        let m = CompressedSparseRows(dense: weight.floats, rows: 21, columns: 13)
        let bias = (0..<21).map { Float($0) }
        let s = SlicedSparseRows(m, bias: bias)!
        #expect(s.sliceCount == 3)
        var rebuilt = [Float](repeating: 0, count: 21 * 13)
        for slice in 0..<s.sliceCount {
            for step in Int(s.sliceSteps[slice])..<Int(s.sliceSteps[slice + 1]) {
                for lane in 0..<8 {
                    let row = Int(s.rowOrder[slice * 8 + lane])
                    let value = s.values[step * 8 + lane]
                    if row < 0 { #expect(value == 0); continue }
                    rebuilt[row * 13 + Int(s.columns[step * 8 + lane])] += value
                }
            }
            for lane in 0..<8 {
                let row = Int(s.rowOrder[slice * 8 + lane])
                #expect(s.laneBias[slice * 8 + lane] == (row >= 0 ? bias[row] : 0))
            }
        }
        #expect(rebuilt == weight.floats)
        let order = (0..<24).map { Int(s.rowOrder[$0]) }
        let lengths = order.filter { $0 >= 0 }.map { m.count(ofRow: $0) }
        #expect(lengths == lengths.sorted(by: >))
        #expect(order.filter { $0 < 0 }.count == 3)
        #expect(Int(bitPattern: s.values) % 64 == 0)
        #expect(s.slices(part: 0, of: 1) == 0..<3)
        #expect(s.slices(part: 0, of: 2).lowerBound == 0 && s.slices(part: 1, of: 2).upperBound == 3)
        #expect(s.slices(part: 0, of: 2).upperBound == s.slices(part: 1, of: 2).lowerBound)
    }

    // MARK: Kernels against plain Swift

    /// `sparseRowsTimesDense` over every tile width (64, 32, 16, 8 and a scalar
    /// tail), plain and strided outputs, with bias, residual and ReLU6, against
    /// the plain-Swift loop and a dense product in Double.
    @Test(arguments: [1, 7, 8, 9, 16, 23, 32, 40, 63, 64, 65, 100, 131])
    func sparseTimesDenseMatchesPlainSwift(_ width: Int) throws {
        try #require(cpuSupportsBlockedKernels, "needs AVX2 and FMA")
        let (rows, inner) = (11, 30)
        let a = Self.pruned(F.weights([rows, inner], seed: 9), sparsity: 0.7, emptyRows: [3]).floats
        let b = F.weights([inner, width + 3], seed: 10).floats  // row stride width + 3
        let bias = F.weights([rows], seed: 11).floats
        let residual = F.weights([rows, width], seed: 12, std: 2).floats
        let m = CompressedSparseRows(dense: a, rows: rows, columns: inner)
        var expected = [Float](repeating: 0, count: rows * width)
        for r in 0..<rows {
            for j in 0..<width {
                var sum = Double(bias[r]) + Double(residual[r * width + j])
                for k in 0..<inner { sum += Double(a[r * inner + k]) * Double(b[k * (width + 3) + j]) }
                expected[r * width + j] = Float(min(max(sum, 0), 6))
            }
        }
        for vectorized in [true, false] {
            for transposed in [false, true] {
                var out = [Float](repeating: .nan, count: rows * width)
                var res = residual
                if transposed {  // element (r, j) at j * rows + r
                    res = (0..<rows * width).map { residual[($0 % rows) * width + $0 / rows] }
                }
                res.withUnsafeBufferPointer { rp in
                    out.withUnsafeMutableBufferPointer { op in
                        let output = StridedRows(start: op.baseAddress!, residual: rp.baseAddress!,
                                                 rowStride: transposed ? 1 : width, columnStride: transposed ? rows : 1)
                        m.multiplyDense(rows: 0..<rows, b, rowStride: width + 3, width: width, bias: bias, output,
                                        .relu6, vectorized: vectorized)
                    }
                }
                let got = transposed ? (0..<rows * width).map { out[($0 % width) * rows + $0 / width] } : out
                let scale = expected.reduce(0) { max($0, abs($1)) }
                let error = zip(got, expected).reduce(0) { max($0, abs($1.0 - $1.1)) }
                #expect(error <= Self.tolerance * (1 + scale), "vectorized \(vectorized) transposed \(transposed)")
            }
        }
    }

    /// The batch transpose of the sparse linear kernel, 8 x 8 blocks and edges.
    @Test(arguments: [(1, 1), (3, 17), (8, 8), (9, 16), (16, 9), (23, 41), (64, 500)])
    func transposeMatchesDefinition(_ shape: (Int, Int)) {
        let (rows, columns) = shape
        let x = (0..<rows * columns).map { Float($0) }
        let expected = (0..<rows * columns).map { x[($0 % rows) * columns + $0 / rows] }
        for vectorized in [true, false] where !vectorized || cpuSupportsBlockedKernels {
            var y = [Float](repeating: -1, count: rows * columns)
            y.withUnsafeMutableBufferPointer { transpose(x, rows: rows, columns: columns, $0.baseAddress!, vectorized: vectorized) }
            #expect(y == expected, "vectorized \(vectorized)")
        }
    }

    // MARK: Sessions against the reference

    /// A 37 -> 29 linear layer (rows 0 and 5 empty) + ReLU, at every sparsity and batch.
    @Test(arguments: sparsities, [1, 3, 77])
    func sparseLinearMatchesReference(_ sparsity: Double, _ batch: Int) throws {
        let weight = Self.pruned(F.weights([29, 37], seed: 4), sparsity: sparsity, emptyRows: [0, 5])
        let graph = Graph(
            inputs: [GraphInput(name: "x", sampleShape: [37])], outputs: ["y"],
            nodes: [Node(name: "fc", op: .linear, inputs: ["x", "w", "b"], output: "h"),
                    Node(name: "act", op: .relu, inputs: ["h"], output: "y")],
            initializers: ["w": weight, "b": F.weights([29], seed: 5)])
        for vectorized in [true, false] {
            #expect(try Self.matchesReference(graph, batch: batch, policy: .sparse, vectorized: vectorized),
                    "vectorized \(vectorized)")
        }
        let session = try Session(model: Model(graph: graph), sparseKernels: .sparse)
        #expect(session.layerKernels.map(\.sparse) == [true])
        #expect(abs(session.layerKernels[0].weightDensity - weight.density) < 1e-12)
    }

    /// Every conv case of the runtime tests (strides, padding, dilation, groups,
    /// depthwise, 1x1) with pruned weights, plain and AVX2, batch 1 and 2.
    @Test(arguments: RuntimeTests.convCases, [0.0, 0.9, 1.0])
    func sparseConvMatchesReference(_ c: ConvCase, _ sparsity: Double) throws {
        var parameters = [("w", Self.pruned(F.weights(c.weight, seed: 7), sparsity: sparsity, emptyRows: [1]))]
        if c.hasBias { parameters.append(("b", F.weights([c.weight[0]], seed: 8))) }
        let graph = F.singleOp(.conv2d(c.attributes), sample: c.sample, parameters: parameters)
        for vectorized in [true, false] {
            for batch in [1, 2] {
                #expect(try Self.matchesReference(graph, batch: batch, policy: .sparse, vectorized: vectorized),
                        "vectorized \(vectorized) batch \(batch)")
            }
        }
        #expect(try ExecutionPlan(graph: graph, sparseKernels: .sparse).steps.contains { $0.kernel is SparseConvKernel })
    }

    /// A conv with 64 output pixels per image and 20 x 25 taps (LeNet's conv2 shape),
    /// so the vectorized kernel runs full 64-wide tiles.
    @Test(arguments: [0.5, 0.92]) func lenetShapedConvMatchesReference(_ sparsity: Double) throws {
        let weight = Self.pruned(F.weights([50, 20, 5, 5], seed: 3, std: 0.05), sparsity: sparsity)
        let graph = F.singleOp(.conv2d(Conv2d()), sample: [20, 12, 12],
                               parameters: [("w", weight), ("b", F.weights([50], seed: 4, std: 0.1))])
        for vectorized in [true, false] {
            #expect(try Self.matchesReference(graph, batch: 3, policy: .sparse, vectorized: vectorized, threads: 2))
        }
    }

    /// Sparse layers between blocked ones: the plan converts layouts where a
    /// sparse conv reads a blocked value, and a sparse conv takes over the
    /// residual Add + ReLU a blocked conv would have fused.
    @Test(arguments: [["c1"], ["c2"], ["proj"], ["c1", "c2", "proj"]])
    func sparseConvsMixWithBlockedOnes(_ sparse: [String]) throws {
        var graph = RuntimeTests.residualGraph()
        for name in ["w1", "w2", "wp"] { graph.initializers[name] = Self.pruned(graph.initializers[name]!, sparsity: 0.8) }
        for vectorized in [true, false] {
            #expect(try Self.matchesReference(graph, batch: 2, policy: .sparse, vectorized: vectorized,
                                              sparseNodes: Set(sparse)))
        }
        let plan = try ExecutionPlan(graph: graph, sparseKernels: .sparse, sparseNodes: Set(sparse))
        #expect(Set(plan.layerKernels.filter(\.sparse).map(\.node)) == Set(sparse))
        guard cpuSupportsBlockedKernels else { return }
        // proj, the later conv, takes the Add (and the ReLU after it) with c2's output as its residual.
        #expect(plan.fusedResidualAdds == ["add"])
        if sparse == ["c2"] {  // c2 reads c1's blocked output through a conversion
            #expect(plan.steps.contains { $0.kernel is ReorderKernel && $0.node == "h1#nchw" })
        }
        if sparse == ["proj"] {  // the sparse proj adds the residual itself
            let proj = plan.steps.first { $0.node == "proj" }!
            #expect(proj.kernel is SparseConvKernel && proj.inputs.count == 2)
        }
    }

    /// Layers large enough to be split over 2 workers within one image: a linear
    /// layer over its slices (batch 1) or output features (batch 2), a conv over its
    /// output channels.
    @Test func largeLayersSplitOverWorkers() throws {
        let linear = F.singleOp(.linear, sample: [1000], parameters: [("w", F.weights([1100, 1000], seed: 2, std: 0.05))])
        let conv = F.singleOp(.conv2d(Conv2d(padding: .same(1))), sample: [32, 32, 32],
                              parameters: [("w", Self.pruned(F.weights([32, 32, 3, 3], seed: 3, std: 0.1), sparsity: 0.05))])
        for vectorized in [true, false] {
            for batch in [1, 2] {
                #expect(try Self.matchesReference(linear, batch: batch, policy: .sparse, vectorized: vectorized, threads: 2))
            }
            #expect(try Self.matchesReference(conv, batch: 1, policy: .sparse, vectorized: vectorized, threads: 2))
        }
    }

    /// 32-bit column indices (70,000 inputs) take the plain-Swift path, vectorized or not.
    @Test func wideLinearMatchesReference() throws {
        let weight = Self.pruned(F.weights([3, 70_000], seed: 6), sparsity: 0.99)
        let graph = F.singleOp(.linear, sample: [70_000], parameters: [("w", weight)])
        for batch in [1, 2] {
            #expect(try Self.matchesReference(graph, batch: batch, policy: .sparse, vectorized: true))
        }
        #expect(try Session(model: Model(graph: graph), sparseKernels: .sparse).layerKernels[0].kernel == "sparse-csr-gemv")
    }

    /// LeNet-5 with every layer 90% pruned: `.sparse` matches the reference, on
    /// 1 and 2 threads, at batch 1 (one image's features split over workers) and 64.
    @Test(arguments: [1, 64]) func prunedLenetMatchesReference(_ batch: Int) throws {
        let graph = Self.prunedLenet(sparsity: 0.9)
        for vectorized in [true, false] {
            for threads in [1, 2] {
                #expect(try Self.matchesReference(graph, batch: batch, policy: .sparse, vectorized: vectorized,
                                                  threads: threads), "vectorized \(vectorized) threads \(threads)")
            }
        }
    }

    /// `.auto` times candidates, so its choices may differ run to run; its outputs
    /// must not (beyond rounding), and every conv and linear layer is recorded.
    @Test func autoMatchesDense() throws {
        let graph = Self.prunedLenet(sparsity: 0.92, layers: ["fc1", "fc2", "conv2"])
        let model = Model(graph: graph)
        let auto = try Session(model: model, sparseKernels: .auto)
        let dense = try Session(model: model, sparseKernels: .dense)
        for batch in [1, 5] {
            let x = Self.inputs(graph, batch: batch)["x"]!
            #expect(F.isClose(try auto.run(x), try dense.run(x), relative: Self.tolerance))
        }
        #expect(auto.layerKernels.map(\.node) == ["conv1", "conv2", "fc1", "fc2"])
        // conv1 is dense: never timed. The pruned layers were.
        let timed = auto.layerKernels.filter { $0.denseMicroseconds != nil && $0.sparseMicroseconds != nil }.map(\.node)
        #expect(timed == ["conv2", "fc1", "fc2"])
        #expect(dense.layerKernels.allSatisfy { !$0.sparse && $0.denseMicroseconds == nil })
    }

    /// `.auto` keeps whichever candidate its timer says is faster, recording both
    /// times; a stand-in timer decides here (no clock involved), in both
    /// directions and on a tie (dense stays), with AVX2 kernels and without.
    @Test(arguments: [(dense: 0.5, sparse: 0.25), (dense: 0.25, sparse: 0.5), (dense: 0.5, sparse: 0.5)])
    func autoKeepsTheFasterKernel(_ seconds: (dense: Double, sparse: Double)) throws {
        let graph = Self.prunedLenet(sparsity: 0.92, layers: ["fc1", "fc2", "conv2"])
        let sparseWins = seconds.sparse < seconds.dense
        for blocked in [true, false] {
            var timed: [String] = []
            let timing: KernelTiming = { kernel, inputShapes, outputShape in
                let label = kernel.label(inputShapes: inputShapes, outputShape: outputShape)
                timed.append(label)
                return label.hasPrefix("sparse-") ? seconds.sparse : seconds.dense
            }
            let session = try Session(model: Model(graph: graph), threads: 1, kernels: blocked ? .avx2 : .portable,
                                      sparseKernels: .auto, kernelTiming: timing)
            // conv1 is dense, so never timed; each pruned layer times its dense candidate, then its sparse one.
            #expect(timed.count == 6 && timed.enumerated().allSatisfy { $0.element.hasPrefix("sparse-") == ($0.offset % 2 == 1) },
                    "\(timed)")
            let kernels = Dictionary(uniqueKeysWithValues: session.layerKernels.map { ($0.node, $0) })
            #expect(kernels["conv1"]!.sparse == false && kernels["conv1"]!.denseMicroseconds == nil)
            for node in ["conv2", "fc1", "fc2"] {
                let choice = kernels[node]!
                #expect(choice.sparse == sparseWins, "\(node), blocked \(blocked)")
                #expect(choice.kernel.hasPrefix("sparse-") == sparseWins, "\(node): \(choice.kernel)")
                #expect(choice.denseMicroseconds == seconds.dense * 1e6 && choice.sparseMicroseconds == seconds.sparse * 1e6)
            }
            let x = Self.inputs(graph, batch: 2)["x"]!
            let dense = try Session(model: Model(graph: graph), threads: 1, kernels: blocked ? .avx2 : .portable, sparseKernels: .dense)
            #expect(F.isClose(try session.run(x), try dense.run(x), relative: Self.tolerance))
        }
    }

    /// An unpruned model plans exactly as before: nothing timed, nothing sparse.
    @Test func denseModelsAreNotTimed() throws {
        let session = try Session(model: Model(graph: RuntimeTests.lenetGraph()))
        #expect(session.layerKernels.count == 4)
        #expect(session.layerKernels.allSatisfy { !$0.sparse && $0.denseMicroseconds == nil && $0.weightDensity == 1 })
        let expected = cpuSupportsBlockedKernels ? ["dense-blocked", "dense-blocked", "dense-gemv", "dense-gemv"]
                                                 : ["dense-gemm", "dense-gemm", "dense-gemv", "dense-gemv"]
        #expect(session.layerKernels.map(\.kernel) == expected)
    }

    /// The per-step profile names each step's kernel and density.
    @Test func stepProfileNamesKernels() throws {
        let model = Model(graph: Self.prunedLenet(sparsity: 0.9))
        let bench = LatencyBenchmark(warmupRuns: 1, minRepetitions: 2, minSeconds: 0)
        let sparse = try Session(model: model, sparseKernels: .sparse)
        let one = try bench.measureSteps(sparse, batch: 1)
        #expect(sparse.layerKernels.allSatisfy { $0.sparse })
        let fc1 = one.steps.first { $0.node == "fc1" }!
        #expect(fc1.kernel == (cpuSupportsBlockedKernels ? "sparse-sliced-gemv" : "sparse-csr-gemv"))
        #expect(abs(fc1.weightDensity! - 0.1) < 1e-3)
        #expect(one.steps.first { $0.node == "conv2" }!.kernel == "sparse-csr-gemm")
        #expect(one.steps.contains { $0.kernel == "pool" })
        let batch = try bench.measureSteps(Session(model: model, sparseKernels: .dense), batch: 4)
        #expect(batch.execution == "layer-wise")  // fc1 is too large to run image by image
        #expect(batch.steps.first { $0.node == "fc1" }!.kernel == "dense-gemm")
        #expect(batch.steps.allSatisfy { $0.medianMs >= 0 })
    }

    /// LeNet-5 with `layers` (default: all four) magnitude-pruned to `sparsity`.
    static func prunedLenet(sparsity: Double, layers: [String] = ["conv1", "conv2", "fc1", "fc2"]) -> Graph {
        var graph = RuntimeTests.lenetGraph()
        for layer in layers {
            let name = layer + ".w"
            graph.initializers[name] = pruned(graph.initializers[name]!, sparsity: sparsity)
        }
        return graph
    }
}

/// The pointers and concrete shapes one planned step reads and writes, fixed
/// for one batch size. Layout is dense row-major (NCHW for feature maps).
struct StepBinding {
    var inputs: [UnsafeMutablePointer<Float>]
    var inputShapes: [[Int]]
    var output: UnsafeMutablePointer<Float>
    var outputShape: [Int]
}

/// Scratch memory and the parallelism a kernel may use while it runs.
struct KernelContext {
    /// `threads` regions of `scratchPerWorker` floats, shared by every step (steps run one at a time).
    var scratch: UnsafeMutablePointer<Float>
    var scratchPerWorker: Int
    /// The threads a step's parallel loops run on.
    let pool: WorkerPool

    /// Workers a step may be split over.
    var threads: Int { pool.threads }

    /// Worker `worker`'s own scratch region.
    func scratch(forWorker worker: Int) -> UnsafeMutablePointer<Float> { scratch + worker &* scratchPerWorker }

    /// How many workers `work` multiply-adds (or comparisons) are worth: one
    /// below `threshold`, where waking a second thread cost more than it saved.
    func workers(forWork work: Int, threshold: Int = 1_000_000) -> Int { splits(work, threshold: threshold) ? threads : 1 }

    /// Whether a step of `work` is cut into parts: from `threshold` on (or always, for
    /// tests: `WorkerPool.splitsAllWork`). Kernels whose parts are fixed sizes ask this
    /// rather than `workers`, so the same parts run on any number of threads.
    func splits(_ work: Int, threshold: Int) -> Bool { work >= threshold || pool.splitsAllWork }

    /// Runs `body(i, worker)` for `i` in `0..<count`, split over `workers`
    /// workers of the pool when `workers > 1`; worker `w` takes `i = w, w + workers, ...`.
    /// `body` must only write memory owned by index `i` or by its worker.
    func forEachIndex(_ count: Int, workers: Int, _ body: (_ index: Int, _ worker: Int) -> Void) {
        pool.forEachIndex(count, workers: workers, body)
    }

    /// Runs `body(i, worker)` once for each `i` in `0..<count`, indices claimed
    /// one at a time by up to `workers` threads of the pool (`WorkerPool.forEachPart`):
    /// `worker` says whose scratch memory to use, and must not change the result.
    func forEachPart(_ count: Int, workers: Int, _ body: (_ index: Int, _ worker: Int) -> Void) {
        pool.forEachPart(count, workers: workers, body)
    }
}

/// One op compiled for the runtime: attributes and prepared weights, with no
/// batch size baked in.
protocol Kernel {
    /// Floats of scratch memory one worker of `run` needs for these shapes.
    func scratchCount(inputShapes: [[Int]], outputShape: [Int]) -> Int
    /// Computes the output from the inputs; never writes an input.
    func run(_ binding: StepBinding, _ context: KernelContext)
    /// What runs for these shapes, for reports: "dense-gemv", "sparse-csr-gemm", "blocked-pool", ...
    func label(inputShapes: [[Int]], outputShape: [Int]) -> String
}

extension Kernel {
    func scratchCount(inputShapes: [[Int]], outputShape: [Int]) -> Int { 0 }

    /// The type's name without "Kernel", in lower case with dashes: `BlockedPoolKernel` is "blocked-pool".
    func label(inputShapes: [[Int]], outputShape: [Int]) -> String {
        var name = String(describing: Self.self)
        if name.hasSuffix("Kernel") { name.removeLast("Kernel".count) }
        var words = ""
        for ch in name {
            if ch.isUppercase && !words.isEmpty { words.append("-") }
            words.append(Character(ch.lowercased()))
        }
        return words
    }
}

/// An activation fused into a convolution's or linear layer's epilogue.
enum FusedActivation: Sendable, Equatable {
    case none, relu, relu6
    case hardSigmoid(alpha: Float, beta: Float)
    case hardSwish
    case gelu(tanhApproximation: Bool)

    /// The activation a node of `op` fuses as; nil for ops that do not fuse.
    init?(_ op: Op) {
        switch op {
        case .relu: self = .relu
        case .relu6: self = .relu6
        case .hardSigmoid(let alpha, let beta): self = .hardSigmoid(alpha: alpha, beta: beta)
        case .hardSwish: self = .hardSwish
        case .gelu(let tanhApproximation): self = .gelu(tanhApproximation: tanhApproximation)
        default: return nil
        }
    }

    /// The op computing this activation on its own (nil for none).
    var op: Op? {
        switch self {
        case .none: nil
        case .relu: .relu
        case .relu6: .relu6
        case .hardSigmoid(let alpha, let beta): .hardSigmoid(alpha: alpha, beta: beta)
        case .hardSwish: .hardSwish
        case .gelu(let tanhApproximation): .gelu(tanhApproximation: tanhApproximation)
        }
    }

    /// True when the activation maps 0 to 0, so it can be applied to blocked
    /// values, whose padded channels must stay zero (the hard sigmoid maps 0 to beta).
    var keepsZero: Bool {
        if case .hardSigmoid = self { return false }
        return true
    }
}

/// Calls `body` with a pointer to `bias`'s elements, or with nil when the
/// layer has no bias: how kernels hand an optional bias to their epilogue.
@inline(__always)
func withBias(_ bias: [Float]?, _ body: (UnsafePointer<Float>?) -> Void) {
    guard let bias else { return body(nil) }
    bias.withUnsafeBufferPointer { body($0.baseAddress!) }
}

/// Adds `bias[c]` (if any) to each of `channels` runs of `length` floats and
/// applies `activation`, in one pass: the epilogue of a conv image.
func applyChannelBiasAndActivation(_ y: UnsafeMutablePointer<Float>, channels: Int, length: Int,
                                   bias: UnsafePointer<Float>?, _ activation: FusedActivation) {
    if bias == nil && activation == .none { return }
    for c in 0..<channels {
        let row = y + c &* length
        let b = bias?[c] ?? 0
        switch activation {
        case .none: for i in 0..<length { row[i] += b }
        case .relu:
            for i in 0..<length { let v = row[i] + b; row[i] = v > 0 ? v : 0 }
        case .relu6:
            for i in 0..<length { let v = row[i] + b; row[i] = v > 0 ? (v < 6 ? v : 6) : 0 }
        case .hardSigmoid, .hardSwish, .gelu:
            if b != 0 { for i in 0..<length { row[i] += b } }
            _ = applyActivation(activation.op!, row, row, count: length)
        }
    }
}

/// Adds `bias[j]` (if any) to column `j` of a `rows x columns` matrix and
/// applies `activation`: the epilogue of a linear layer.
func applyColumnBiasAndActivation(_ y: UnsafeMutablePointer<Float>, rows: Int, columns: Int,
                                  bias: UnsafePointer<Float>?, _ activation: FusedActivation) {
    if bias == nil && activation == .none { return }
    for r in 0..<rows {
        let row = y + r &* columns
        if let bias {
            for j in 0..<columns { row[j] += bias[j] }
        }
        switch activation {
        case .none: break
        case .relu: for j in 0..<columns { row[j] = row[j] > 0 ? row[j] : 0 }
        case .relu6: for j in 0..<columns { let v = row[j]; row[j] = v > 0 ? (v < 6 ? v : 6) : 0 }
        case .hardSigmoid, .hardSwish, .gelu: _ = applyActivation(activation.op!, row, row, count: columns)
        }
    }
}

/// Part `part` of `0..<count` cut into `parts` contiguous, nearly equal ranges.
func chunk(_ count: Int, parts: Int, _ part: Int) -> Range<Int> {
    (count * part / parts)..<(count * (part + 1) / parts)
}

/// The valid range `lo..<hi` of `k` in `0..<taps` with `0 <= start + k * step < limit`.
@inline(__always)
func validTapRange(start: Int, step: Int, taps: Int, limit: Int) -> (lo: Int, hi: Int) {
    let lo = start >= 0 ? 0 : (-start &+ step &- 1) / step
    let room = limit &- start
    let hi = room <= 0 ? 0 : min(taps, (room &+ step &- 1) / step)
    return (min(lo, taps), max(hi, min(lo, taps)))
}

/// A buffer of floats aligned to 64 bytes, freed with its owner.
final class FloatBuffer {
    let pointer: UnsafeMutablePointer<Float>
    let count: Int

    init(count: Int) {
        self.count = count
        let raw = UnsafeMutableRawPointer.allocate(byteCount: max(count, 16) * 4, alignment: 64)
        pointer = raw.bindMemory(to: Float.self, capacity: max(count, 16))
    }

    deinit { UnsafeMutableRawPointer(pointer).deallocate() }
}

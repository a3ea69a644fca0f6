/// The pointers and shapes one training step reads and writes, fixed for one
/// batch size. Data inputs only: weights live in the kernel as `ParameterBuffer`s.
struct TrainingBinding {
    var inputs: [UnsafeMutablePointer<Float>]
    var inputShapes: [[Int]]
    /// Where each input's gradient accumulates; nil when nothing needs it
    /// (graph inputs by default, constants).
    var inputGradients: [UnsafeMutablePointer<Float>?]
    var output: UnsafeMutablePointer<Float>
    var outputShape: [Int]
    /// The gradient of the loss with respect to the output, complete when `backward` runs.
    var outputGradient: UnsafeMutablePointer<Float>
    /// Whether `backward` adds into the kernel's parameter gradients; false on
    /// a scoped backward (``BackwardScope``) through a layer whose parameters
    /// are not being updated, which then only passes the gradient on.
    var computesParameterGradients = true
    /// Whether `backward` writes the gradient of input 0 instead of adding
    /// into it: it is the first to write it (the plan's `assignsInputGradient`),
    /// so that gradient was not zeroed.
    var assignsInputGradient = false
}

/// One op compiled for training: a forward that caches what its backward
/// needs (argmax indices, batch statistics, dropout masks) and a backward
/// that *adds* into input and parameter gradients, so values read by several
/// nodes (residual blocks) sum their gradients.
protocol TrainingKernel: AnyObject {
    /// Floats of scratch memory one worker needs for these shapes.
    func scratchCount(inputShapes: [[Int]], outputShape: [Int]) -> Int
    func forward(_ binding: TrainingBinding, training: Bool, _ context: KernelContext)
    func backward(_ binding: TrainingBinding, _ context: KernelContext)
}

extension TrainingKernel {
    func scratchCount(inputShapes: [[Int]], outputShape: [Int]) -> Int { 0 }
}

/// `y[i] += x[i]` for `count` elements.
@inline(__always)
func accumulate(_ x: UnsafePointer<Float>, into y: UnsafeMutablePointer<Float>, count: Int) {
    addVectors(y, x, y, count: count)
}

/// `dB[c] += Σ dY[c][k]` over the `plane` values of each of `channels` planes (a conv's bias gradient).
func addPlaneSums(_ dY: UnsafePointer<Float>, channels: Int, plane: Int, into dB: UnsafeMutablePointer<Float>) {
    for c in 0..<channels {
        let row = dY + c &* plane
        var sum: Float = 0
        for k in 0..<plane { sum += row[k] }
        dB[c] += sum
    }
}

/// Calls `body(range)` for consecutive ranges covering `0..<count`, split over
/// the workers when an element-wise pass over `count` floats is worth it (from
/// 256K elements, about 50 us of memory traffic); the ranges start at multiples
/// of 16 elements. Element-wise results do not depend on the split.
func forEachElementRange(_ count: Int, _ context: KernelContext, _ body: (Range<Int>) -> Void) {
    let workers = context.workers(forWork: count &* 4)
    guard workers > 1 else { return body(0..<count) }
    let blocks = (count &+ 15) / 16
    context.forEachIndex(workers, workers: workers) { part, _ in
        let r = chunk(blocks, parts: workers, part)
        let range = (r.lowerBound &* 16)..<min(r.upperBound &* 16, count)
        if !range.isEmpty { body(range) }
    }
}

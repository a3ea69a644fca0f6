import Foundation

/// Softmax along an axis, `exp(x - max) / sum`, over each line of the axis.
struct SoftmaxKernel: Kernel {
    let axis: Int

    func run(_ b: StepBinding, _ context: KernelContext) {
        let shape = b.outputShape
        let a = axis < 0 ? axis + shape.count : axis
        let (outer, length, inner) = (shape[..<a].reduce(1, *), shape[a], shape[(a + 1)...].reduce(1, *))
        for o in 0..<outer {
            for i in 0..<inner {
                let start = o &* length &* inner &+ i
                softmaxLine(b.inputs[0] + start, b.output + start, length: length, stride: inner)
            }
        }
    }

}

/// Softmax of one line of `length` values `stride` apart, `x` into `y`:
/// the one definition inference and training share.
func softmaxLine(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, length: Int, stride: Int) {
    var peak = -Float.infinity
    for k in 0..<length { peak = Swift.max(peak, x[k &* stride]) }
    var total: Float = 0
    for k in 0..<length {
        let e = exp(x[k &* stride] - peak)
        y[k &* stride] = e
        total += e
    }
    let scale = 1 / total
    for k in 0..<length { y[k &* stride] *= scale }
}

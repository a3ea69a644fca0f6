/// Stride, dilation and padding of a 2-D sliding window (Conv, MaxPool,
/// AveragePool) from ONNX attributes, `auto_pad` resolved against the input size.
struct WindowAttributes {
    var stride: Size2
    var dilation: Size2
    var padding: Padding2
}

extension ONNXNodeProto {
    /// Reads strides, dilations, pads and auto_pad for a window of `kernel`
    /// over spatial size `input` (H, W).
    func windowAttributes(kernel: Size2, input: Size2) throws(UnsupportedFeature) -> WindowAttributes {
        let strides = try ints("strides") ?? [1, 1]
        let dilations = try ints("dilations") ?? [1, 1]
        guard strides.count == 2, dilations.count == 2 else { throw UnsupportedFeature("strides and dilations must have 2 values") }
        let stride = Size2(strides[0], strides[1]), dilation = Size2(dilations[0], dilations[1])
        guard min(strides[0], strides[1], dilations[0], dilations[1]) >= 1 else {
            throw UnsupportedFeature("strides \(strides) and dilations \(dilations) must be >= 1")
        }
        let padding: Padding2
        switch try string("auto_pad", default: "NOTSET") {
        case "NOTSET":
            let pads = try ints("pads") ?? [0, 0, 0, 0]
            guard pads.count == 4, pads.allSatisfy({ $0 >= 0 }) else { throw UnsupportedFeature("pads \(pads) must be 4 non-negative values") }
            padding = Padding2(top: pads[0], left: pads[1], bottom: pads[2], right: pads[3])
        case "VALID":
            padding = .zero
        case let mode where mode == "SAME_UPPER" || mode == "SAME_LOWER":
            let (top, bottom) = samePadding(input.h, kernel.h, stride.h, dilation.h, upper: mode == "SAME_UPPER")
            let (left, right) = samePadding(input.w, kernel.w, stride.w, dilation.w, upper: mode == "SAME_UPPER")
            padding = Padding2(top: top, left: left, bottom: bottom, right: right)
        case let mode:
            throw UnsupportedFeature("auto_pad \(mode) not supported")
        }
        return WindowAttributes(stride: stride, dilation: dilation, padding: padding)
    }
}

/// Padding (before, after) along one axis so that the output is ceil(input / stride);
/// SAME_UPPER puts the odd extra pixel after, SAME_LOWER before.
func samePadding(_ input: Int, _ kernel: Int, _ stride: Int, _ dilation: Int, upper: Bool) -> (Int, Int) {
    let output = (input + stride - 1) / stride
    let total = max(0, (output - 1) * stride + (kernel - 1) * dilation + 1 - input)
    let small = total / 2
    return upper ? (small, total - small) : (total - small, small)
}

extension Padding2 {
    /// Element-wise sum of two paddings.
    static func + (a: Padding2, b: Padding2) -> Padding2 {
        Padding2(top: a.top + b.top, left: a.left + b.left, bottom: a.bottom + b.bottom, right: a.right + b.right)
    }
}

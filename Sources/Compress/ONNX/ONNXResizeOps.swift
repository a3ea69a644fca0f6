/// Resize, Upsample and ConvTranspose.
extension ImportContext {
    /// `Resize` (opsets 10 to 19) of a 4-D value over H and W, with constant
    /// scales or sizes (sizes may come from a folded shape chain whose first
    /// element is the batch). Opset 10 maps coordinates like `Upsample`.
    mutating func convertResize(_ n: ONNXNodeProto) throws(UnsupportedFeature) {
        if opset < 11 {
            try n.onlyAttributes(["mode"])
            let scales = try constant(n.inputs[1], "scales").tensor.floats
            try defineLegacyResize(n, scales: scales)
            return
        }
        try n.onlyAttributes(["antialias", "axes", "coordinate_transformation_mode", "cubic_coeff_a", "exclude_outside",
                              "extrapolation_value", "keep_aspect_ratio_policy", "mode", "nearest_mode"])
        let modeName = try n.string("mode", default: "nearest")
        guard let mode = Resize2d.Mode(rawValue: modeName) else {
            throw UnsupportedFeature("mode \(modeName) (only nearest and linear are supported)")
        }
        let coordinateName = try n.string("coordinate_transformation_mode", default: "half_pixel")
        guard let coordinates = Resize2d.CoordinateTransformation(rawValue: coordinateName) else {
            throw UnsupportedFeature("coordinate_transformation_mode \(coordinateName) (supported: "
                                     + Resize2d.CoordinateTransformation.allCases.map(\.rawValue).joined(separator: ", ") + ")")
        }
        let roundingName = try n.string("nearest_mode", default: "round_prefer_floor")
        guard let rounding = Resize2d.NearestRounding(rawValue: roundingName) else {
            throw UnsupportedFeature("nearest_mode \(roundingName) not supported")
        }
        guard try n.int("antialias", default: 0) == 0 else { throw UnsupportedFeature("antialias=1 (only antialias=0 is supported)") }
        guard try n.int("exclude_outside", default: 0) == 0 else {
            throw UnsupportedFeature("exclude_outside=1 (only exclude_outside=0 is supported)")
        }
        let x = try dynamic(n.inputs[0])
        guard x.rank == 4 else { throw UnsupportedFeature("\(x.rank)-D input \(x.shape) (only 4-D [N,C,H,W] is supported)") }
        var axes = [0, 1, 2, 3]
        if let given = try n.ints("axes") {
            axes = []
            for a in given { axes.append(try normalizedAxis(a, rank: 4)) }
            guard Set(axes).count == axes.count else { throw UnsupportedFeature("axes \(given) repeat an axis") }
        }
        let scales = try optionalConstant(n, 2, "scales")
        let sizes = try optionalConstant(n, 3, "sizes")
        let resize: Resize2d
        if let scales, scales.tensor.count > 0 {
            guard sizes == nil || sizes!.tensor.count == 0 else { throw UnsupportedFeature("both scales and sizes are given") }
            let values = scales.tensor.floats
            guard values.count == axes.count else { throw UnsupportedFeature("\(values.count) scales for \(axes.count) axes") }
            var full: [Float] = [1, 1, 1, 1]
            for (k, a) in axes.enumerated() { full[a] = values[k] }
            guard full[0] == 1, full[1] == 1 else { throw UnsupportedFeature("scales \(full) resize the batch or channel axis") }
            resize = Resize2d(mode: mode, coordinates: coordinates, nearestRounding: rounding, scaleH: full[2], scaleW: full[3])
            // align_corners divides by the output length less one: onnxruntime takes the floored
            // length, ONNX's reference input·scale; refused where they differ.
            for (length, scale) in [(x.shape[2], full[2]), (x.shape[3], full[3])]
            where coordinates == .alignCorners && (Float(length) * scale).rounded(.down) != Float(length) * scale {
                throw UnsupportedFeature("align_corners with scale \(scale) on length \(length): the output length "
                                         + "\(Float(length) * scale) is not whole (give sizes instead)")
            }
        } else if let sizes, sizes.tensor.count > 0 {
            let values = sizes.ints
            guard values.count == axes.count else { throw UnsupportedFeature("\(values.count) sizes for \(axes.count) axes") }
            var full = x.shape
            for (k, a) in axes.enumerated() {
                guard sizes.tag(k) == .fixed || (a == 0 && sizes.tag(k) == .batch) else {
                    throw UnsupportedFeature("sizes element \(k) depends on the batch size")
                }
                full[a] = values[k]
            }
            guard full[0] == x.shape[0], full[1] == x.shape[1] else {
                throw UnsupportedFeature("sizes \(full) resize the batch or channel axis of \(x.shape)")
            }
            guard full[2] > 0, full[3] > 0 else { throw UnsupportedFeature("sizes \(full) must be positive") }
            var (scaleH, scaleW) = (Float(full[2]) / Float(x.shape[2]), Float(full[3]) / Float(x.shape[3]))
            let policy = try n.string("keep_aspect_ratio_policy", default: "stretch")
            switch policy {
            case "stretch": break
            case "not_larger", "not_smaller":
                // One scale over the resized axes (ONNX: min or max of sizes / input), sizes rounded from it.
                let spatial = axes.filter { $0 >= 2 }.map { Float(full[$0]) / Float(x.shape[$0]) }
                let scale = policy == "not_larger" ? spatial.min() ?? 1 : spatial.max() ?? 1
                if axes.contains(2) { scaleH = scale; full[2] = Int((scale * Float(x.shape[2])).rounded(.toNearestOrEven)) }
                if axes.contains(3) { scaleW = scale; full[3] = Int((scale * Float(x.shape[3])).rounded(.toNearestOrEven)) }
            default: throw UnsupportedFeature("keep_aspect_ratio_policy \(policy) not supported")
            }
            resize = Resize2d(mode: mode, coordinates: coordinates, nearestRounding: rounding, scaleH: scaleH, scaleW: scaleW,
                              size: Size2(full[2], full[3]))
        } else {
            throw UnsupportedFeature("neither scales nor sizes is given as a constant")
        }
        define(n.outputs[0], .dynamic(try emit(.resize(resize), [x], output: n.outputs[0])))
    }

    /// `Upsample` (opset 9, deprecated from 10: the importer reads opsets from 9, where scales are an input).
    mutating func convertUpsample(_ n: ONNXNodeProto) throws(UnsupportedFeature) {
        try n.onlyAttributes(["mode"])
        try defineLegacyResize(n, scales: try constant(n.inputs[1], "scales").tensor.floats)
    }

    /// `Upsample` and opset-10 `Resize`: asymmetric coordinates; nearest
    /// takes the floor when enlarging and the ceiling when shrinking (as onnxruntime does).
    private mutating func defineLegacyResize(_ n: ONNXNodeProto, scales: [Float]) throws(UnsupportedFeature) {
        let modeName = try n.string("mode", default: "nearest")
        let mode: Resize2d.Mode
        switch modeName {
        case "nearest": mode = .nearest
        case "linear", "bilinear": mode = .linear
        default: throw UnsupportedFeature("mode \(modeName) (only nearest and linear are supported)")
        }
        let x = try dynamic(n.inputs[0])
        guard x.rank == 4 else { throw UnsupportedFeature("\(x.rank)-D input \(x.shape) (only 4-D [N,C,H,W] is supported)") }
        guard scales.count == 4, scales[0] == 1, scales[1] == 1, scales[2] > 0, scales[3] > 0 else {
            throw UnsupportedFeature("scales \(scales) (need 4 values with 1 on the batch and channel axes)")
        }
        let (enlarges, shrinks) = (scales[2] >= 1 && scales[3] >= 1, scales[2] < 1 && scales[3] < 1)
        guard mode == .linear || enlarges || shrinks else {
            throw UnsupportedFeature("scales \(scales) enlarge one axis and shrink the other in nearest mode")
        }
        let resize = Resize2d(mode: mode, coordinates: .asymmetric, nearestRounding: enlarges ? .floor : .ceil,
                              scaleH: scales[2], scaleW: scales[3])
        define(n.outputs[0], .dynamic(try emit(.resize(resize), [x], output: n.outputs[0])))
    }

    /// `ConvTranspose` with a constant 4-D weight `[C, O/groups, kh, kw]` and
    /// optional constant bias; `output_shape` and `auto_pad` SAME_* become pads.
    mutating func convertConvTranspose(_ n: ONNXNodeProto) throws(UnsupportedFeature) {
        try n.onlyAttributes(["auto_pad", "dilations", "group", "kernel_shape", "output_padding", "output_shape", "pads", "strides"])
        let x = try dynamic(n.inputs[0])
        guard x.rank == 4 else { throw UnsupportedFeature("\(x.rank)-D input \(x.shape) (only 4-D [N,C,H,W] is supported)") }
        let w = try constant(n.inputs[1], "the weight")
        guard w.shape.count == 4 else { throw UnsupportedFeature("weight \(w.shape) is not 4-D") }
        if let k = try n.ints("kernel_shape"), k != Array(w.shape[2...]) {
            throw UnsupportedFeature("kernel_shape \(k) does not match weight \(w.shape)")
        }
        let strides = try n.ints("strides") ?? [1, 1], dilations = try n.ints("dilations") ?? [1, 1]
        var outputPadding = try n.ints("output_padding") ?? [0, 0]
        guard strides.count == 2, dilations.count == 2, outputPadding.count == 2 else {
            throw UnsupportedFeature("strides, dilations and output_padding must have 2 values")
        }
        var pads = try n.ints("pads") ?? [0, 0, 0, 0]
        guard pads.count == 4 else { throw UnsupportedFeature("pads \(pads) must have 4 values") }
        let autoPad = try n.string("auto_pad", default: "NOTSET")
        var target = try n.ints("output_shape")
        if let t = target, t.count != 2 {
            guard t.count == 4 else { throw UnsupportedFeature("output_shape \(t) must give H and W") }
            target = Array(t.suffix(2))
        }
        switch autoPad {
        case "NOTSET", "VALID", "SAME_UPPER", "SAME_LOWER": break
        default: throw UnsupportedFeature("auto_pad \(autoPad) not supported")
        }
        if autoPad == "VALID" { pads = [0, 0, 0, 0] }
        if target == nil && autoPad.hasPrefix("SAME") { target = [x.shape[2] * strides[0], x.shape[3] * strides[1]] }
        if let target {
            // ONNX: total padding = stride·(in - 1) + output_padding + (k - 1)·dilation + 1 - output_shape,
            // the odd pixel at the end for SAME_UPPER, at the start otherwise.
            for axis in 0..<2 {
                let total = strides[axis] * (x.shape[2 + axis] - 1) + outputPadding[axis]
                    + (w.shape[2 + axis] - 1) * dilations[axis] + 1 - target[axis]
                guard total >= 0 else {
                    // A larger output_shape extends the bottom and right edges, like output_padding (onnxruntime).
                    (pads[axis], pads[axis + 2]) = (0, 0)
                    outputPadding[axis] -= total
                    continue
                }
                let (small, large) = (total / 2, total - total / 2)
                (pads[axis], pads[axis + 2]) = autoPad == "SAME_UPPER" ? (small, large) : (large, small)
            }
        }
        guard pads.allSatisfy({ $0 >= 0 }) else { throw UnsupportedFeature("pads \(pads) must be non-negative") }
        let attributes = ConvTranspose2d(stride: Size2(strides[0], strides[1]),
                                         padding: Padding2(top: pads[0], left: pads[1], bottom: pads[2], right: pads[3]),
                                         dilation: Size2(dilations[0], dilations[1]), groups: try n.int("group", default: 1),
                                         outputPadding: Size2(outputPadding[0], outputPadding[1]))
        var inputs = [x, try operand(n.inputs[1])]
        if let b = n.input(2) { inputs.append(try operand(b)) }
        define(n.outputs[0], .dynamic(try emit(.convTranspose(attributes), inputs, output: n.outputs[0])))
    }
}

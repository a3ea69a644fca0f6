/// `Op.slice` on a plain tensor along any axis: for each index before the
/// axis, one contiguous run of the input's block.
struct SliceKernel: Kernel {
    let axis: Int
    let range: Range<Int>

    func run(_ b: StepBinding, _ context: KernelContext) {
        let shape = b.inputShapes[0]
        let a = axis < 0 ? axis + shape.count : axis
        let outer = shape[..<a].reduce(1, *), inner = shape[(a + 1)...].reduce(1, *)
        let (inBlock, outBlock, first) = (shape[a] &* inner, range.count &* inner, range.lowerBound &* inner)
        for o in 0..<outer {
            (b.output + o &* outBlock).update(from: b.inputs[0] + (o &* inBlock &+ first), count: outBlock)
        }
    }
}

/// `Op.slice` along the channels of a blocked (NCHW8c) feature map when the
/// range starts on a block boundary: whole blocks are copied, and the lanes of
/// the last block past the range are zeroed (padding channels stay zero).
/// A range starting inside a block is planned on the plain layout instead.
struct BlockedChannelSliceKernel: Kernel {
    let range: Range<Int>

    static func supports(_ range: Range<Int>) -> Bool { range.lowerBound % 8 == 0 }

    func run(_ b: StepBinding, _ context: KernelContext) {
        let shape = b.inputShapes[0]
        let (n, plane) = (shape[0], shape[2...].reduce(1, *))
        let inImage = blockedChannels(shape[1]) &* plane
        let outImage = blockedChannels(range.count) &* plane
        let tail = range.count % 8
        for i in 0..<n {
            let out = b.output + i &* outImage
            out.update(from: b.inputs[0] + (i &* inImage &+ range.lowerBound &* plane), count: outImage)
            guard tail != 0 else { continue }
            let last = out + (outImage &- 8 &* plane)
            for p in 0..<plane {
                for lane in tail..<8 { last[p &* 8 &+ lane] = 0 }
            }
        }
    }
}

/// `Op.channelPermute`: output channel `k` is input channel `order[k]`, in the
/// plain layout (one plane copied per channel) or the blocked one (lane by
/// lane, padding lanes zeroed).
struct ChannelPermuteKernel: Kernel {
    let order: [Int]
    let layout: ValueLayout

    func run(_ b: StepBinding, _ context: KernelContext) {
        let shape = b.inputShapes[0]
        let (n, c, plane) = (shape[0], shape[1], shape[2...].reduce(1, *))
        let (x, y) = (b.inputs[0], b.output)
        order.withUnsafeBufferPointer { order in
            switch layout {
            case .plain:
                for i in 0..<n {
                    let image = i &* c
                    for k in 0..<c {
                        (y + (image &+ k) &* plane).update(from: x + (image &+ order[k]) &* plane, count: plane)
                    }
                }
            case .blocked:
                let image = blockedChannels(c) &* plane
                for i in 0..<n {
                    let (xi, yi) = (x + i &* image, y + i &* image)
                    for k in 0..<c {
                        let j = order[k]
                        let source = xi + ((j >> 3) &* plane &* 8 &+ (j & 7))
                        let target = yi + ((k >> 3) &* plane &* 8 &+ (k & 7))
                        for p in 0..<plane { target[p &* 8] = source[p &* 8] }
                    }
                    for k in c..<blockedChannels(c) {
                        let target = yi + ((k >> 3) &* plane &* 8 &+ (k & 7))
                        for p in 0..<plane { target[p &* 8] = 0 }
                    }
                }
            }
        }
    }

    func label(inputShapes: [[Int]], outputShape: [Int]) -> String {
        layout == .blocked ? "blocked-channel-permute" : "channel-permute"
    }
}

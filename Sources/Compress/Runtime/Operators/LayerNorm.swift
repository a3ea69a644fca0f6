import SIMDKernels

/// LayerNorm over the channels (axis 1) of a plain `[N, C, ...]` value at
/// each position (`Op.layerNorm`): the statistics of a tile of positions are
/// gathered channel by channel, so every pass streams contiguous rows.
struct LayerNormKernel: Kernel {
    let scale: [Float]
    let bias: [Float]
    let epsilon: Float

    /// Positions whose statistics are gathered together.
    private static let tile = 64

    init(scale: Tensor, bias: Tensor?, epsilon: Float) {
        self.scale = scale.floats
        self.bias = bias?.floats ?? [Float](repeating: 0, count: scale.shape.elementCount)
        self.epsilon = epsilon
    }

    func scratchCount(inputShapes: [[Int]], outputShape: [Int]) -> Int { 3 * Self.tile }

    func run(_ b: StepBinding, _ context: KernelContext) {
        let shape = b.inputShapes[0]
        let (n, channels, inner) = (shape[0], shape[1], shape[2...].reduce(1, *))
        let tiles = (inner + Self.tile - 1) / Self.tile
        let epsilon = self.epsilon
        scale.withUnsafeBufferPointer { sp in
            bias.withUnsafeBufferPointer { bp in
                let (g, beta) = (sp.baseAddress!, bp.baseAddress!)
                context.forEachPart(n * tiles, workers: context.workers(forWork: 4 * n * channels * inner)) { unit, worker in
                    let (image, start) = (unit / tiles, (unit % tiles) &* Self.tile)
                    let count = min(Self.tile, inner &- start)
                    let x = b.inputs[0] + (image &* channels &* inner &+ start)
                    let y = b.output + (image &* channels &* inner &+ start)
                    let sums = context.scratch(forWorker: worker)
                    let (mean, inverseDeviation) = (sums + Self.tile, sums + 2 &* Self.tile)
                    sums.update(repeating: 0, count: count)
                    for c in 0..<channels {
                        let row = x + c &* inner
                        for t in 0..<count { sums[t] += row[t] }
                    }
                    let inverseCount = 1 / Float(channels)
                    for t in 0..<count { mean[t] = sums[t] * inverseCount; sums[t] = 0 }
                    for c in 0..<channels {
                        let row = x + c &* inner
                        for t in 0..<count { let d = row[t] - mean[t]; sums[t] += d * d }
                    }
                    for t in 0..<count { inverseDeviation[t] = 1 / (sums[t] * inverseCount + epsilon).squareRoot() }
                    for c in 0..<channels {
                        let (row, out, s, shift) = (x + c &* inner, y + c &* inner, g[c], beta[c])
                        for t in 0..<count { out[t] = (row[t] - mean[t]) * inverseDeviation[t] * s + shift }
                    }
                }
            }
        }
    }
}

/// `LayerNormKernel` on a blocked (NCHW8c) feature map, written blocked
/// (`SIMDKernels.blockedLayerNorm`), so a LayerNorm between blocked convs
/// needs no layout conversion.
struct BlockedLayerNormKernel: Kernel {
    /// `ceil(C/8) * 8` floats, zero in padded channels.
    let scale: [Float]
    let bias: [Float]
    let epsilon: Float

    init(scale: Tensor, bias: Tensor?, epsilon: Float) {
        let padded = blockedChannels(scale.shape.elementCount)
        var s = [Float](repeating: 0, count: padded), t = s
        s.replaceSubrange(0..<scale.shape.elementCount, with: scale.floats)
        if let bias { t.replaceSubrange(0..<bias.shape.elementCount, with: bias.floats) }
        (self.scale, self.bias, self.epsilon) = (s, t, epsilon)
    }

    func run(_ b: StepBinding, _ context: KernelContext) {
        let shape = b.inputShapes[0]
        let (n, channels, plane) = (shape[0], shape[1], shape[2...].reduce(1, *))
        let image = blockedChannels(channels) * plane
        let epsilon = self.epsilon
        scale.withUnsafeBufferPointer { sp in
            bias.withUnsafeBufferPointer { bp in
                let (g, beta) = (sp.baseAddress!, bp.baseAddress!)
                context.forEachPart(n, workers: context.workers(forWork: 4 * n * image)) { i, _ in
                    blockedLayerNorm(b.inputs[0] + i &* image, channels: channels, plane: plane, scale: g, bias: beta,
                                     epsilon: epsilon, b.output + i &* image)
                }
            }
        }
    }
}

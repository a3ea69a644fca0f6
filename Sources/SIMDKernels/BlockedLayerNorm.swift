// LayerNorm over the channels of one NCHW8c image (ConvNeXt's channels-first
// LayerNorm): the statistics at a pixel are taken across its blocks' lanes.

/// Pixels whose statistics are gathered together: each block's run of this
/// many pixels is 512 contiguous bytes, read once per pass.
private let layerNormTile = 16

/// LayerNorm over the `channels` values at each pixel of a blocked image
/// `x` (`[ceil(C/8)][plane][8]`, padded channels 0), written blocked to `y`:
/// `(x - mean) / sqrt(var + epsilon) * scale[c] + bias[c]`, with the biased
/// variance. `scale` and `bias` hold `ceil(C/8) * 8` floats, zero in padded
/// channels, so padded channels stay 0. Padded lanes add nothing to the sum;
/// each adds `mean²` to the sum of squared deviations, which is taken back out.
public func blockedLayerNorm(_ x: UnsafePointer<Float>, channels: Int, plane: Int,
                             scale: UnsafePointer<Float>, bias: UnsafePointer<Float>, epsilon: Float,
                             _ y: UnsafeMutablePointer<Float>) {
    let blocks = (channels &+ 7) / 8
    let padded = Float(blocks &* 8 &- channels)
    let inverseCount = 1 / Float(channels)
    let blockStride = plane &* 8
    withUnsafeTemporaryAllocation(of: SIMD8<Float>.self, capacity: layerNormTile) { acc in
        withUnsafeTemporaryAllocation(of: Float.self, capacity: 2 &* layerNormTile) { stats in
            let (mean, inverseDeviation) = (stats.baseAddress!, stats.baseAddress! + layerNormTile)
            var start = 0
            while start < plane {
                let count = min(layerNormTile, plane &- start)
                for t in 0..<count { acc[t] = SIMD8<Float>() }
                for cb in 0..<blocks {
                    let row = x + (cb &* blockStride &+ start &* 8)
                    for t in 0..<count { acc[t] += load8(row + t &* 8) }
                }
                for t in 0..<count {
                    mean[t] = acc[t].sum() * inverseCount
                    acc[t] = SIMD8<Float>()
                }
                for cb in 0..<blocks {
                    let row = x + (cb &* blockStride &+ start &* 8)
                    for t in 0..<count {
                        let d = load8(row + t &* 8) - SIMD8<Float>(repeating: mean[t])
                        acc[t] = acc[t].addingProduct(d, d)
                    }
                }
                for t in 0..<count {
                    let m = mean[t]
                    let variance = max(0, (acc[t].sum() - padded * m * m) * inverseCount)
                    inverseDeviation[t] = 1 / (variance + epsilon).squareRoot()
                }
                for cb in 0..<blocks {
                    let (g, b) = (load8(scale + cb &* 8), load8(bias + cb &* 8))
                    let row = x + (cb &* blockStride &+ start &* 8)
                    let out = y + (cb &* blockStride &+ start &* 8)
                    for t in 0..<count {
                        let normalized = (load8(row + t &* 8) - SIMD8<Float>(repeating: mean[t]))
                            * SIMD8<Float>(repeating: inverseDeviation[t])
                        store8(b.addingProduct(normalized, g), out + t &* 8)
                    }
                }
                start &+= count
            }
        }
    }
}

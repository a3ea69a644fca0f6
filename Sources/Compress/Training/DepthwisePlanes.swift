import SIMDKernels

/// Depthwise training passes over `SIMDKernels`' padded-plane loops
/// (`PlaneDepthwise.swift`), one image and one channel plane at a time:
///
/// - forward: each input plane is copied once into a zero-padded scratch, then
///   each of its `depthwiseMultiplier` output planes is a correlation of it;
/// - filter gradient: `dW[o][tap] += Σ dY[o] · shifted x` from the same scratch;
/// - data gradient: the output gradient spread out by the stride (zeros
///   between its rows and columns) and padded by `k - 1 - padding` is
///   correlated with the filter rotated by 180 degrees and added into `dX`
///   (Dumoulin & Visin, "A guide to convolution arithmetic for deep learning", 2016, section 4).
///
/// Scratch per worker: the padded input plane, the output gradient's rows
/// padded to whole vectors, and the padded spread output gradient.
extension ConvTrainingKernel {
    /// The forward's plane geometry.
    func forwardPlane(_ g: ConvGeometry) -> DepthwisePlaneShape {
        let a = attributes
        return DepthwisePlaneShape(height: g.height, width: g.width, kernelHeight: kernelH, kernelWidth: kernelW,
                                   strideHeight: a.stride.h, strideWidth: a.stride.w, top: a.padding.top,
                                   left: a.padding.left, outputHeight: g.outH, outputWidth: g.outW)
    }

    /// The data gradient's plane geometry: the spread output gradient as input,
    /// stride 1, the input's size as output.
    func gradientPlane(_ g: ConvGeometry) -> DepthwisePlaneShape {
        let a = attributes
        return DepthwisePlaneShape(height: (g.outH - 1) * a.stride.h + 1, width: (g.outW - 1) * a.stride.w + 1,
                                   kernelHeight: kernelH, kernelWidth: kernelW, strideHeight: 1, strideWidth: 1,
                                   top: kernelH - 1 - a.padding.top, left: kernelW - 1 - a.padding.left,
                                   outputHeight: g.height, outputWidth: g.width)
    }

    /// Floats of one worker's plane scratch.
    func depthwisePlaneScratchCount(_ g: ConvGeometry) -> Int {
        let f = forwardPlane(g)
        return f.paddedCount + f.outputHeight * f.roundedOutputWidth + gradientPlane(g).paddedCount
    }

    func planeForward(_ x: UnsafeMutablePointer<Float>, _ y: UnsafeMutablePointer<Float>, _ g: ConvGeometry,
                      scratch: UnsafeMutablePointer<Float>) {
        let s = forwardPlane(g)
        let (planeIn, planeOut, taps) = (g.height &* g.width, g.outSpatial, kernelH &* kernelW)
        let w = weight.values.baseAddress!
        for c in 0..<outChannels / depthwiseMultiplier {
            padDepthwisePlane(x + c &* planeIn, s, scratch)
            for j in 0..<depthwiseMultiplier {
                let o = c &* depthwiseMultiplier &+ j
                depthwisePlaneCorrelate(scratch, s, filter: w + o &* taps, flipped: false, accumulates: false,
                                        y + o &* planeOut)
            }
        }
    }

    /// `dW += ` the filter gradient when `x` and `dW` are given, and `dX += ` the data gradient when `dX` is.
    func planeBackward(_ x: UnsafeMutablePointer<Float>?, _ dY: UnsafeMutablePointer<Float>,
                       _ dX: UnsafeMutablePointer<Float>?, dW: UnsafeMutablePointer<Float>?, _ g: ConvGeometry,
                       scratch: UnsafeMutablePointer<Float>) {
        let (s, t) = (forwardPlane(g), gradientPlane(g))
        let (planeIn, planeOut, taps) = (g.height &* g.width, g.outSpatial, kernelH &* kernelW)
        let (paddedInput, gradientRows) = (scratch, scratch + s.paddedCount)
        let spreadGradient = gradientRows + s.outputHeight &* s.roundedOutputWidth
        let w = weight.values.baseAddress!
        for c in 0..<outChannels / depthwiseMultiplier {
            if let x, dW != nil { padDepthwisePlane(x + c &* planeIn, s, paddedInput) }
            for j in 0..<depthwiseMultiplier {
                let o = c &* depthwiseMultiplier &+ j
                let dYo = dY + o &* planeOut
                if x != nil, let dW {
                    padDepthwiseGradientRows(dYo, s, gradientRows)
                    depthwisePlaneFilterGradient(paddedInput, s, outputGradientRows: gradientRows, dW + o &* taps)
                }
                if let dX {
                    padDepthwisePlane(dYo, t, spreadHeight: attributes.stride.h, spreadWidth: attributes.stride.w,
                                      spreadGradient)
                    depthwisePlaneCorrelate(spreadGradient, t, filter: w + o &* taps, flipped: true, accumulates: true,
                                            dX + c &* planeIn)
                }
            }
        }
    }
}

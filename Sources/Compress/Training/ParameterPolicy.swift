/// Hooks an optimizer applies to one parameter on every step.
///
/// - `isFrozen`: the parameter is never updated.
/// - `mask`: a binary mask (1 keeps, 0 prunes, one per element): the gradient of
///   pruned weights is zeroed before the update and the mask re-applied after
///   it, so pruned weights stay exactly zero (Han et al., "Learning both
///   Weights and Connections for Efficient Neural Networks", NeurIPS 2015).
/// - `codebook`: weights tied to shared centroids (see ``Codebook``).
/// - `shadow`: weights stored in a narrow precision, trained through float32
///   shadow weights that the values are the rounding of (see ``ShadowWeights``).
/// - `learningRateMultiplier`: scales the learning rate of this parameter
///   (multirate fine-tuning: e.g. 0.1 on early layers).
/// - `appliesWeightDecay`: overrides the optimizer's default (decay weights,
///   not biases or BatchNorm parameters).
public struct ParameterPolicy: Sendable, Equatable {
    public var isFrozen: Bool
    public var mask: [Float]?
    public var codebook: Codebook?
    public var shadow: ShadowWeights?
    public var learningRateMultiplier: Float
    public var appliesWeightDecay: Bool?

    public init(isFrozen: Bool = false, mask: [Float]? = nil, codebook: Codebook? = nil, shadow: ShadowWeights? = nil,
                learningRateMultiplier: Float = 1, appliesWeightDecay: Bool? = nil) {
        self.isFrozen = isFrozen; self.mask = mask; self.codebook = codebook; self.shadow = shadow
        self.learningRateMultiplier = learningRateMultiplier; self.appliesWeightDecay = appliesWeightDecay
    }
}

/// Weight sharing as in Deep Compression (Han et al., "Deep Compression:
/// Compressing Deep Neural Networks with Pruning, Trained Quantization and
/// Huffman Coding", ICLR 2016): each weight holds the index of a shared
/// centroid. A step moves every centroid by the *summed* gradient of its
/// members (through the optimizer's rule, so SGD moves it by
/// `-lr · Σ members' gradients`), then writes the centroids back into the weights.
///
/// With `negated`, a weight may be its centroid's negation: the hashed
/// layers of HashedNets (Chen et al., "Compressing Neural Networks with the
/// Hashing Trick", ICML 2015), whose buckets are the centroids. A weight
/// `w_i = s_i · c_k` gives `∂L/∂c_k = Σ_i s_i · ∂L/∂w_i` over its members.
/// Negation flips the sign bit, as ``HashedLayout`` does.
public struct Codebook: Sendable, Equatable {
    /// The shared values.
    public var centroids: [Float]
    /// Per weight, its centroid's index; negative for a pruned weight, held at zero.
    public var assignments: [Int32]
    /// Per weight, whether it is its centroid negated; nil when none is.
    public var negated: [Bool]?

    public init(centroids: [Float], assignments: [Int32], negated: [Bool]? = nil) {
        precondition(negated == nil || negated!.count == assignments.count, "one sign per assignment")
        self.centroids = centroids
        self.assignments = assignments
        self.negated = negated
    }

    /// Writes each weight's centroid into `values` (0 for pruned weights).
    func materialize(into values: UnsafeMutableBufferPointer<Float>) {
        centroids.withUnsafeBufferPointer { c in
            assignments.withUnsafeBufferPointer { a in
                if let negated {
                    negated.withUnsafeBufferPointer { n in
                        for i in 0..<a.count {
                            let k = Int(a[i])
                            values[i] = k >= 0 ? Float(bitPattern: c[k].bitPattern ^ (n[i] ? 0x8000_0000 : 0)) : 0
                        }
                    }
                } else {
                    for i in 0..<a.count { values[i] = a[i] >= 0 ? c[Int(a[i])] : 0 }
                }
            }
        }
    }

    /// Per centroid, the (signed) sum of its members' gradients.
    func centroidGradients(_ gradient: UnsafeMutableBufferPointer<Float>) -> [Float] {
        var sums = [Float](repeating: 0, count: centroids.count)
        sums.withUnsafeMutableBufferPointer { s in
            assignments.withUnsafeBufferPointer { a in
                if let negated {
                    negated.withUnsafeBufferPointer { n in
                        for i in 0..<a.count where a[i] >= 0 { s[Int(a[i])] += n[i] ? -gradient[i] : gradient[i] }
                    }
                } else {
                    for i in 0..<a.count where a[i] >= 0 { s[Int(a[i])] += gradient[i] }
                }
            }
        }
        return sums
    }
}

extension ParameterBuffer {
    /// Ties this parameter to `codebook` and writes the centroids into its values.
    /// Traps when the codebook has one assignment per element wrong.
    public func tie(to codebook: Codebook) {
        precondition(codebook.assignments.count == count, "codebook for '\(name)' needs \(count) assignments")
        policy.codebook = codebook
        codebook.materialize(into: values)
    }

    /// Masks this parameter (1 keeps, 0 prunes) and zeroes the pruned values now.
    public func applyMask(_ mask: [Float]) {
        precondition(mask.count == count, "mask for '\(name)' needs \(count) entries")
        policy.mask = mask
        for i in 0..<count { values[i] *= mask[i] }
    }
}

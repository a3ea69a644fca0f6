import Compress

/// Centroids a layer coded in `bits` bits gets: `2^bits`, or `2^bits - 1`
/// when the layer has zeros, so that a dense index layout can reserve one of
/// the `2^bits` codes for zero and still fit in `bits` bits.
public func sharingClusterCount(bits: Int, hasZeros: Bool) -> Int {
    (1 << bits) - (hasZeros ? 1 : 0)
}

/// One tensor after weight sharing.
public struct SharedWeights: Sendable, Equatable {
    /// Every weight replaced by its centroid; zeros (either sign) are +0.0.
    public var values: [Float]
    /// The clustering of the non-zero weights, in their order of appearance.
    public var clustering: ScalarClustering
    /// The centroids asked for (``sharingClusterCount(bits:hasZeros:)``).
    public var clusters: Int
    /// Mean |w - centroid| over the non-zero weights (0 when there are none).
    public var meanAbsoluteError: Double
    /// Distinct non-zero values of `values`.
    public var distinctValues: Int { Set(values.filter { $0 != 0 }).count }
}

/// Weight sharing of one tensor (Han et al., "Deep Compression: Compressing
/// Deep Neural Networks with Pruning, Trained Quantization and Huffman
/// Coding", ICLR 2016, §3): k-means (``kMeansClustering(_:clusters:initialization:seed:maxIterations:)``)
/// over the surviving, non-zero weights only, with
/// ``sharingClusterCount(bits:hasZeros:)`` clusters, then every such weight
/// replaced by its centroid. Zeros are not clustered and stay exactly +0.0,
/// so pruned weights stay pruned. (A centroid that came out exactly 0, the
/// mean of members summing to zero, would prune its members; the float32
/// weights of trained layers practically never do that.)
public func sharedWeights(_ values: [Float], bits: Int, initialization: CentroidInitialization,
                          seed: UInt64, maxIterations: Int = 10_000) -> SharedWeights {
    precondition((1...8).contains(bits), "weight sharing codes 1 to 8 bits, got \(bits)")
    let positions = values.indices.filter { values[$0] != 0 }
    let survivors = positions.map { values[$0] }
    let clusters = sharingClusterCount(bits: bits, hasZeros: positions.count < values.count)
    let clustering = kMeansClustering(survivors, clusters: clusters, initialization: initialization, seed: seed,
                                      maxIterations: maxIterations)
    var shared = [Float](repeating: 0, count: values.count)
    var error = 0.0
    for (i, k) in zip(positions, clustering.assignments) {
        shared[i] = clustering.centroids[Int(k)]
        error += Double(abs(values[i] - shared[i]))
    }
    return SharedWeights(values: shared, clustering: clustering, clusters: clusters,
                         meanAbsoluteError: positions.isEmpty ? 0 : error / Double(positions.count))
}

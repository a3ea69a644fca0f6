import Compress

/// Where k-means places its first centroids. Han et al. ("Deep Compression:
/// Compressing Deep Neural Networks with Pruning, Trained Quantization and
/// Huffman Coding", ICLR 2016, §3.2) compare all three and find `linear` best:
/// it keeps centroids at the rare large weights, which matter most.
public enum CentroidInitialization: String, Sendable, CaseIterable {
    /// Evenly spaced between the smallest and the largest value.
    case linear
    /// Evenly spaced in the values' cumulative distribution (the quantiles at
    /// (j + 1/2) / k), so dense regions get more centroids.
    case density
    /// k distinct values drawn with the seed (Forgy initialization).
    case random
}

/// The result of clustering scalars: sorted centroids and, per value, the
/// index of its centroid.
public struct ScalarClustering: Sendable, Equatable {
    /// Ascending; fewer than asked when there are fewer distinct values.
    public var centroids: [Float]
    /// Per input value, in input order, its centroid's index.
    public var assignments: [Int32]
    /// Lloyd iterations run until the assignment stopped changing (or the limit).
    public var iterations: Int
}

/// Lloyd's k-means on scalars (Lloyd, "Least squares quantization in PCM",
/// 1982), exact in one dimension: with the values sorted, every cluster is a
/// contiguous run, bounded by the midpoints between neighbouring centroids,
/// and its mean comes from prefix sums.
///
/// Deterministic: a value exactly on a midpoint joins the lower centroid; a
/// cluster left empty takes the value farthest from its centroid (the lowest
/// such value on ties); `random` draws from `seed` alone. With at most
/// `clusters` distinct values, each distinct value is its own centroid.
///
/// - Parameters:
///   - values: the values to cluster (finite).
///   - clusters: at most this many centroids, at least 1.
///   - maxIterations: a bound on Lloyd iterations.
public func kMeansClustering(_ values: [Float], clusters: Int, initialization: CentroidInitialization,
                             seed: UInt64, maxIterations: Int = 100) -> ScalarClustering {
    precondition(clusters >= 1, "k-means needs at least one cluster")
    guard !values.isEmpty else { return ScalarClustering(centroids: [], assignments: [], iterations: 0) }
    let order = values.indices.sorted { values[$0] != values[$1] ? values[$0] < values[$1] : $0 < $1 }
    let sorted = order.map { Double(values[$0]) }
    var distinct: [Double] = []
    for v in sorted where distinct.last != v { distinct.append(v) }
    var centroids: [Double]
    var iterations = 0
    if distinct.count <= clusters {
        centroids = distinct
    } else {
        centroids = initialCentroids(sorted, distinct: distinct, k: clusters, initialization, seed: seed)
        var prefix = [Double](repeating: 0, count: sorted.count + 1)
        for (i, v) in sorted.enumerated() { prefix[i + 1] = prefix[i] + v }
        var ends: [Int] = []
        while iterations < maxIterations {
            iterations += 1
            let newEnds = clusterEnds(sorted, centroids)
            var start = 0
            var empty: [Int] = []
            for (j, end) in newEnds.enumerated() {
                if end > start { centroids[j] = (prefix[end] - prefix[start]) / Double(end - start) } else { empty.append(j) }
                start = end
            }
            if !empty.isEmpty {
                reseed(&centroids, empty: empty, sorted: sorted, ends: newEnds)
            } else if newEnds == ends {
                break
            }
            ends = empty.isEmpty ? newEnds : []
        }
    }
    let ends = clusterEnds(sorted, centroids)
    var assignments = [Int32](repeating: 0, count: values.count)
    var start = 0
    for (j, end) in ends.enumerated() {
        for i in start..<end { assignments[order[i]] = Int32(j) }
        start = end
    }
    return ScalarClustering(centroids: centroids.map { Float($0) }, assignments: assignments, iterations: iterations)
}

/// The first centroids, ascending and distinct.
private func initialCentroids(_ sorted: [Double], distinct: [Double], k: Int, _ initialization: CentroidInitialization,
                              seed: UInt64) -> [Double] {
    let (lo, hi) = (sorted.first!, sorted.last!)
    var centroids: [Double]
    switch initialization {
    case .linear:
        centroids = k == 1 ? [(lo + hi) / 2] : (0..<k).map { lo + (hi - lo) * Double($0) / Double(k - 1) }
    case .density:
        centroids = (0..<k).map { j in
            let position = (Double(j) + 0.5) / Double(k) * Double(sorted.count - 1)
            let (i, t) = (Int(position), position - Double(Int(position)))
            return i + 1 < sorted.count ? sorted[i] + (sorted[i + 1] - sorted[i]) * t : sorted[i]
        }
    case .random:
        var rng = SeededGenerator(seed: seed)
        var pool = distinct
        for i in 0..<k {
            let j = i + Int(rng.next() % UInt64(pool.count - i))
            pool.swapAt(i, j)
        }
        centroids = Array(pool.prefix(k))
    }
    centroids.sort()
    // Equal starting centroids (dense quantiles of repeated values) would
    // leave clusters empty from the start; the reseeding handles them.
    return centroids
}

/// Per centroid (ascending), the end of its run in `sorted`: the first
/// position past the midpoint to the next centroid (ties go below).
private func clusterEnds(_ sorted: [Double], _ centroids: [Double]) -> [Int] {
    var ends: [Int] = []
    var low = 0
    for j in 0..<(centroids.count - 1) {
        let boundary = (centroids[j] + centroids[j + 1]) / 2
        var (a, b) = (low, sorted.count)
        while a < b {
            let m = (a + b) / 2
            if sorted[m] <= boundary { a = m + 1 } else { b = m }
        }
        ends.append(a)
        low = a
    }
    ends.append(sorted.count)
    return ends
}

/// Moves each empty cluster's centroid to the value farthest from its own
/// centroid (lowest position on ties, each value used once), then re-sorts.
private func reseed(_ centroids: inout [Double], empty: [Int], sorted: [Double], ends: [Int]) {
    var cluster = [Int](repeating: 0, count: sorted.count)
    var start = 0
    for (j, end) in ends.enumerated() {
        for i in start..<end { cluster[i] = j }
        start = end
    }
    var taken = Set<Int>()
    for j in empty {
        var best: (position: Int, error: Double)?
        for (i, v) in sorted.enumerated() where !taken.contains(i) {
            let d = v - centroids[cluster[i]]
            if best == nil || d * d > best!.error { best = (i, d * d) }
        }
        guard let best, best.error > 0 else { continue }
        taken.insert(best.position)
        centroids[j] = sorted[best.position]
    }
    centroids.sort()
}

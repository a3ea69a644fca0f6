import Testing
import Compress
@testable import Prune

@Suite struct KMeansTests {
    /// Three tight, well-separated groups: linear and density initialization
    /// find them, each centroid the group's mean, each value assigned to its
    /// group. (Random initialization may start two centroids in one group and
    /// stop in a local optimum, as Lloyd's algorithm does.)
    @Test func findsSeparatedGroups() {
        var rng = SeededGenerator(seed: 3)
        let means: [Float] = [-0.8, 0.1, 0.9]
        var values: [Float] = []
        var group: [Int] = []
        for i in 0..<300 {
            values.append(means[i % 3] + (rng.nextUniform() - 0.5) * 0.02)
            group.append(i % 3)
        }
        for initialization in [CentroidInitialization.linear, .density] {
            let c = kMeansClustering(values, clusters: 3, initialization: initialization, seed: 7)
            #expect(c.centroids.count == 3, "\(initialization)")
            for g in 0..<3 {
                let members = values.indices.filter { group[$0] == g }
                let mean = members.reduce(0.0) { $0 + Double(values[$1]) } / Double(members.count)
                #expect(abs(Double(c.centroids[g]) - mean) < 1e-5, "\(initialization) group \(g)")
                #expect(members.allSatisfy { c.assignments[$0] == Int32(g) }, "\(initialization) group \(g)")
            }
        }
    }

    /// A hand-solved case: linear initialization on {0, 1, 2, 10, 11, 12} with
    /// k = 2 starts at 0 and 12 and converges to the means 1 and 11.
    @Test func reproducesAHandSolvedClustering() {
        let c = kMeansClustering([10, 0, 12, 1, 11, 2], clusters: 2, initialization: .linear, seed: 0)
        #expect(c.centroids == [1, 11])
        #expect(c.assignments == [1, 0, 1, 0, 1, 0])
    }

    /// Lloyd's fixed point: every centroid is the mean of its members and
    /// every value is assigned to its nearest centroid.
    @Test func resultIsALloydFixedPoint() {
        var rng = SeededGenerator(seed: 11)
        let values = (0..<2000).map { _ in (rng.nextUniform() - 0.5) * (rng.nextUniform() < 0.1 ? 4 : 1) }
        for initialization in CentroidInitialization.allCases {
            let c = kMeansClustering(values, clusters: 16, initialization: initialization, seed: 5)
            #expect(c.centroids.count == 16)
            #expect(zip(c.centroids, c.centroids.dropFirst()).allSatisfy { $0 < $1 }, "ascending")
            for (j, centroid) in c.centroids.enumerated() {
                let members = values.indices.filter { c.assignments[$0] == Int32(j) }
                #expect(!members.isEmpty, "\(initialization): cluster \(j) empty")
                let mean = members.reduce(0.0) { $0 + Double(values[$1]) } / Double(max(members.count, 1))
                #expect(abs(Double(centroid) - mean) < 1e-5, "\(initialization): centroid \(j)")
            }
            for (i, v) in values.enumerated() {
                let own = abs(v - c.centroids[Int(c.assignments[i])])
                #expect(c.centroids.allSatisfy { abs(v - $0) >= own - 1e-6 }, "\(initialization): value \(i)")
            }
        }
    }

    @Test func isDeterministicForASeed() {
        var rng = SeededGenerator(seed: 2)
        let values = (0..<500).map { _ in rng.nextUniform() }
        let a = kMeansClustering(values, clusters: 8, initialization: .random, seed: 42)
        #expect(a == kMeansClustering(values, clusters: 8, initialization: .random, seed: 42))
        #expect(a.centroids.count == 8)
    }

    /// Fewer distinct values than clusters: each is its own centroid, exactly.
    @Test func fewDistinctValuesAreTheirOwnCentroids() {
        let c = kMeansClustering([0.5, -1, 0.5, 3, -1], clusters: 8, initialization: .linear, seed: 0)
        #expect(c.centroids == [-1, 0.5, 3])
        #expect(c.assignments == [1, 0, 1, 2, 0])
        #expect(kMeansClustering([], clusters: 4, initialization: .density, seed: 0).centroids.isEmpty)
    }

    /// Many repeated values make density's quantiles coincide; the clusters
    /// left empty are reseeded, so all k centroids end up used.
    @Test func emptyClustersAreReseeded() {
        let values: [Float] = Array(repeating: 0, count: 90) + [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]
        let c = kMeansClustering(values, clusters: 4, initialization: .density, seed: 0)
        #expect(c.centroids.count == 4)
        #expect(Set(c.assignments).count == 4)
        #expect(c == kMeansClustering(values, clusters: 4, initialization: .density, seed: 0))
    }
}

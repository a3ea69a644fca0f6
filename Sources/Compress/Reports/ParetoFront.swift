/// The Pareto front of points where a smaller cost and a larger value are better.
public enum ParetoFront {
    /// Indices of the points no other point dominates, sorted by cost. Point
    /// `a` dominates `b` when `a.cost <= b.cost`, `a.value >= b.value` and one
    /// of the two is strict. Equal points are both on the front.
    public static func indices(costs: [Double], values: [Double]) -> [Int] {
        precondition(costs.count == values.count, "\(costs.count) costs but \(values.count) values")
        func dominates(_ a: Int, _ b: Int) -> Bool {
            costs[a] <= costs[b] && values[a] >= values[b] && (costs[a] < costs[b] || values[a] > values[b])
        }
        let front = costs.indices.filter { b in !costs.indices.contains { a in dominates(a, b) } }
        return front.sorted { (costs[$0], -values[$0]) < (costs[$1], -values[$1]) }
    }
}

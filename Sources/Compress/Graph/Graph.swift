/// One operation in a graph: reads named values, writes one named value.
public struct Node: Sendable, Hashable {
    public var name: String
    public var op: Op
    public var inputs: [String]
    public var output: String

    public init(name: String, op: Op, inputs: [String], output: String) {
        self.name = name; self.op = op; self.inputs = inputs; self.output = output
    }
}

/// A graph input: a name and the shape of one sample (the batch dimension is implicit).
public struct GraphInput: Sendable, Hashable {
    public var name: String
    public var sampleShape: [Int]
    public init(name: String, sampleShape: [Int]) { self.name = name; self.sampleShape = sampleShape }
}

/// A DAG of nodes over named values, with initializers (weights) and declared
/// inputs and outputs. Nodes are kept in a topological order (`validate()` checks it);
/// passes build new graphs rather than mutating shared state.
public struct Graph: Sendable, Equatable {
    public var inputs: [GraphInput]
    public var outputs: [String]
    public var nodes: [Node]
    public var initializers: [String: Tensor]

    public init(inputs: [GraphInput], outputs: [String], nodes: [Node], initializers: [String: Tensor]) {
        self.inputs = inputs; self.outputs = outputs; self.nodes = nodes; self.initializers = initializers
    }

    /// The node that writes `value`, if any.
    public func producer(of value: String) -> Node? { nodes.first { $0.output == value } }

    /// The nodes that read `value`.
    public func consumers(of value: String) -> [Node] { nodes.filter { $0.inputs.contains(value) } }

    /// Index of the node named `name`.
    public func nodeIndex(named name: String) -> Int? { nodes.firstIndex { $0.name == name } }

    /// Initializer names in a stable order (sorted), for files and reports.
    public var initializerNames: [String] { initializers.keys.sorted() }

    /// Number of float elements in all initializers.
    public var parameterCount: Int { initializers.values.reduce(0) { $0 + $1.count } }

    /// Number of non-zero elements in all initializers.
    public var nonZeroParameterCount: Int {
        initializers.values.reduce(0) { $0 + $1.nonZeroCount }
    }

    /// Orders nodes so every value is written before it is read, or names the
    /// nodes on a cycle / with undefined inputs.
    public func topologicallySorted() throws(GraphError) -> Graph {
        var available = Set(inputs.map(\.name)).union(initializers.keys)
        var remaining = nodes
        var ordered: [Node] = []
        ordered.reserveCapacity(nodes.count)
        while !remaining.isEmpty {
            let readyIndex = remaining.firstIndex { n in n.inputs.allSatisfy { $0.isEmpty || available.contains($0) } }
            guard let i = readyIndex else {
                let producible = Set(remaining.map(\.output))
                let stuck = remaining[0]
                if let missing = stuck.inputs.first(where: { !available.contains($0) && !producible.contains($0) }) {
                    throw .undefinedValue(node: stuck.name, value: missing)
                }
                throw .cycle(nodes: remaining.map(\.name))
            }
            let n = remaining.remove(at: i)
            available.insert(n.output)
            ordered.append(n)
        }
        var g = self
        g.nodes = ordered
        return g
    }
}

/// A problem found validating a graph or inferring its shapes; names the node
/// and value at fault.
public enum GraphError: Error, Equatable, CustomStringConvertible {
    case undefinedValue(node: String, value: String)
    case duplicateValue(String)
    case duplicateNodeName(String)
    case cycle(nodes: [String])
    case undefinedOutput(String)
    case wrongInputCount(node: String, op: String, expected: String, got: Int)
    case shapeMismatch(node: String, value: String, detail: String)
    case invalidAttribute(node: String, detail: String)
    case notFloat(node: String, value: String)

    public var description: String {
        switch self {
        case .undefinedValue(let n, let v): "node '\(n)' reads '\(v)', which no graph input, initializer or earlier node defines"
        case .duplicateValue(let v): "value '\(v)' is defined more than once"
        case .duplicateNodeName(let n): "node name '\(n)' is used more than once"
        case .cycle(let ns): "the graph has a cycle through nodes \(ns.joined(separator: ", "))"
        case .undefinedOutput(let v): "graph output '\(v)' is not produced by any node or input"
        case .wrongInputCount(let n, let op, let e, let g): "node '\(n)' (\(op)) takes \(e) inputs, got \(g)"
        case .shapeMismatch(let n, let v, let d): "node '\(n)', input '\(v)': \(d)"
        case .invalidAttribute(let n, let d): "node '\(n)': \(d)"
        case .notFloat(let n, let v): "node '\(n)': value '\(v)' must be float"
        }
    }
}

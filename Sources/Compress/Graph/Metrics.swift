/// Cost of one node for one sample.
public struct NodeCost: Sendable, Equatable {
    public var name: String
    /// The op's kind, e.g. "Conv2d".
    public var kind: String
    /// Output shape for one sample, batch dimension included (batch 1).
    public var outputShape: [Int]
    /// Elements of the initializers the node reads.
    public var parameters: Int
    /// Multiply-accumulates for one sample: `out_h·out_w·O·(C/groups)·kh·kw`
    /// for `Conv2d`, `in·out` for `Linear`, 0 for every other op.
    public var macs: Int

    public init(name: String, kind: String, outputShape: [Int], parameters: Int, macs: Int) {
        self.name = name; self.kind = kind; self.outputShape = outputShape
        self.parameters = parameters; self.macs = macs
    }
}

extension NodeCost {
    /// The MACs `costReport()` counts for one sample of a node running `op`
    /// with a weight of `weightShape`, reading `inputShape` and writing `outputShape` (batch 1):
    /// `out_h·out_w·O·(C/groups)·kh·kw` for `Conv2d`, `C·H·W·(O/groups)·kh·kw`
    /// for `ConvTranspose` (every input pixel scatters its kernel), `in·out` for `Linear`,
    /// 0 for every other op.
    public static func macs(of op: Op, outputShape: [Int], weightShape: [Int], inputShape: [Int] = []) -> Int {
        switch op {
        case .conv2d:
            // Weight [O, C/groups, kh, kw]: each output element costs (C/groups)·kh·kw.
            outputShape[1...].reduce(1, *) * weightShape[1...].reduce(1, *)
        case .convTranspose:
            // Weight [C, O/groups, kh, kw]: each input element scatters (O/groups)·kh·kw products.
            inputShape.dropFirst().reduce(1, *) * weightShape[1...].reduce(1, *)
        case .linear:
            weightShape[0] * weightShape[1]
        default:
            0
        }
    }
}

/// Per-node and total cost of a graph for one sample.
public struct CostReport: Sendable, Equatable {
    /// One entry per node, in topological order.
    public var nodes: [NodeCost]
    /// Sum of `nodes[i].macs`.
    public var totalMACs: Int
    /// Elements of all initializers (weights read by several nodes count once).
    public var totalParameters: Int

    /// MACs per node name.
    public var macsByNode: [String: Int] {
        Dictionary(uniqueKeysWithValues: nodes.map { ($0.name, $0.macs) })
    }
}

extension Graph {
    /// Parameters and multiply-accumulates of every node for one sample, from
    /// the shapes `inferShapes(batch: 1)` gives. Elementwise ops, pooling and
    /// batch norm count as 0 MACs: at inference, batch norm folds into the
    /// preceding convolution.
    public func costReport() throws(GraphError) -> CostReport {
        let shapes = try inferShapes(batch: 1)
        var costs: [NodeCost] = []
        for node in try topologicallySorted().nodes {
            let out = shapes[node.output]!
            let parameters = node.inputs.reduce(0) { $0 + (initializers[$1]?.count ?? 0) }
            let weight = node.inputs.count > 1 ? shapes[node.inputs[1]] ?? [] : []
            let macs = NodeCost.macs(of: node.op, outputShape: out, weightShape: weight,
                                     inputShape: shapes[node.inputs[0]] ?? [])
            costs.append(NodeCost(name: node.name, kind: node.op.kind, outputShape: out,
                                  parameters: parameters, macs: macs))
        }
        return CostReport(nodes: costs, totalMACs: costs.reduce(0) { $0 + $1.macs }, totalParameters: parameterCount)
    }

    /// Multiply-accumulates for one sample (see `costReport()`).
    public func macsPerSample() throws(GraphError) -> Int {
        try costReport().totalMACs
    }
}

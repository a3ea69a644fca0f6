import Compress

/// Multiply-accumulates of a graph as a function of how many channels each
/// group loses, without building the pruned graph: the cost of every
/// convolution and linear layer is a product of its kept output and input
/// channels, and which channels go does not matter. Agrees with
/// `Graph.costReport()` on the pruned graph when every value carries all
/// channels of its groups; a value carrying part of a group (after a Slice)
/// is charged that share of the group's removed channels, an estimate.
struct ChannelCostModel {
    /// A run of a group's channels along a layer's input or output channel axis.
    private struct Run {
        var group: Int
        var block: Int
        /// The group's channels the value carries, and the group's channels.
        var carried: Int
        var channels: Int
    }

    private struct LayerCost {
        /// MACs per (output channel, input channel of its group) pair: output positions times kernel area.
        var perPair: Int
        var outputs: Int
        var outputRuns: [Run]
        var inputs: Int
        var inputRuns: [Run]
        var groups: Int
        /// Groups follow the channels (depthwise): one input channel per output channel.
        var isDepthwise: Bool
    }

    private let layers: [LayerCost]

    init(graph: Graph, groups: [ChannelGroup]) throws {
        let shapes = try graph.inferShapes(batch: 1)
        var runs: [String: [Run]] = [:]
        for group in groups {
            for member in group.members {
                runs[member.value, default: []].append(Run(group: group.id, block: member.mapping.block,
                                                           carried: member.mapping.carriedCount(channels: group.channels),
                                                           channels: group.channels))
            }
        }
        layers = graph.nodes.compactMap { node in
            let (output, input) = (shapes[node.output]!, shapes[node.inputs[0]]!)
            switch node.op {
            case .conv2d(let a):
                let weight = shapes[node.inputs[1]]!
                let isDepthwise = a.groups > 1 && a.groups == input[1] && a.groups == output[1]
                return LayerCost(perPair: output[2...].reduce(1, *) * weight[2...].reduce(1, *),
                                 outputs: output[1], outputRuns: runs[node.output] ?? [], inputs: input[1],
                                 inputRuns: runs[node.inputs[0]] ?? [], groups: a.groups, isDepthwise: isDepthwise)
            case .convTranspose(let a):
                let weight = shapes[node.inputs[1]]!
                let isDepthwise = a.groups > 1 && a.groups == input[1] && a.groups == output[1]
                return LayerCost(perPair: input[2...].reduce(1, *) * weight[2...].reduce(1, *),
                                 outputs: output[1], outputRuns: runs[node.output] ?? [], inputs: input[1],
                                 inputRuns: runs[node.inputs[0]] ?? [], groups: a.groups, isDepthwise: isDepthwise)
            case .linear:
                return LayerCost(perPair: 1, outputs: output[1], outputRuns: runs[node.output] ?? [], inputs: input[1],
                                 inputRuns: runs[node.inputs[0]] ?? [], groups: 1, isDepthwise: false)
            default:
                return nil
            }
        }
    }

    /// Total MACs for one sample when group `id` loses `removed[id]` channels.
    func macs(removing removed: [Int: Int]) -> Int {
        layers.reduce(0) { total, layer in
            func kept(_ channels: Int, _ runs: [Run]) -> Int {
                channels - runs.reduce(0) { $0 + removed[$1.group, default: 0] * $1.carried / $1.channels * $1.block }
            }
            let outputs = kept(layer.outputs, layer.outputRuns)
            let inputsPerOutput = layer.isDepthwise ? 1 : kept(layer.inputs, layer.inputRuns) / layer.groups
            return total + layer.perPair * outputs * inputsPerOutput
        }
    }
}

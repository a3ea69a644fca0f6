import Compress

/// Groups the channels of `graph` that structured pruning must remove together.
///
/// A worklist over the nodes in topological order gives every value a channel
/// layout: which source layer's output channels lie where along its axis 1.
/// Each op's rule lives in one switch (`ChannelDependencyAnalysis.visit`):
///
/// - Conv2d (groups 1) and Linear start a group with their output channels
///   (weight axis 0, bias) and slice their input channels (weight axis 1).
/// - BatchNorm (its four vectors are sliced), unary activations, Dropout,
///   pools and GlobalAvgPool pass channels through.
/// - LayerNorm over channels passes channels through and its scale and shift
///   are sliced like BatchNorm's; its statistics are taken over whichever
///   channels remain, so a pruned LayerNorm normalizes over the kept channels
///   only (the other channels' values change; channel identity is kept).
/// - Add, Sub, Mul and Div couple all inputs with equal channel counts and the
///   output into one group (inputs broadcasting over channels are left out),
///   so a residual branch, its shortcut and every reader share one group.
/// - Concat on the channel axis shifts each input's channels by its offset.
/// - Flatten of `[N,C,H,W]` maps channel `c` to features `c·H·W ..< (c+1)·H·W`.
/// - A depthwise convolution (groups = input = output channels) follows its
///   input: its filter and output channel `c` go with input channel `c`.
/// - Slice along channels gives its output the sub-range of its input's
///   layout (a group may then lie partly in one value, partly in another, as
///   after ShuffleNetV2's split); along another axis it passes channels
///   through. ChannelPermute moves each channel to its new index. Both record
///   their node (`ChannelGroup.indexedAttributes`) so a removal rewrites the
///   bounds or the order.
/// - ConvTranspose (groups 1) is a source like Conv2d with its weight's axes
///   swapped (`[C, O, kh, kw]`: output channels axis 1, input channels axis 0);
///   its depthwise form follows its input. Resize passes channels through.
///
/// Groups are not prunable when they reach a graph output, a Reshape, a
/// Slice or ChannelPermute of a flattened value's features, a
/// Softmax over channels, a grouped convolution other than depthwise, an
/// elementwise op or Concat whose inputs' channels cannot be matched one to
/// one (or include a graph input or constant), a layer whose parameters are
/// not initializers, or an initializer several nodes read.
///
/// The approach follows Fang et al., "DepGraph: Towards Any Structural
/// Pruning", CVPR 2023 (Torch-Pruning), over this project's graph IR.
///
/// - Returns: groups ordered by their first source layer in graph order; a
///   group's `id` is its index.
/// - Throws: `GraphError` when the graph is invalid.
public func channelDependencyGroups(in graph: Graph) throws -> [ChannelGroup] {
    var analysis = try ChannelDependencyAnalysis(graph: graph)
    for node in analysis.graph.nodes { analysis.visit(node) }
    for output in analysis.graph.outputs {
        analysis.refuse(values: [output], because: "reaches graph output '\(output)'")
    }
    return analysis.groups()
}

/// A run of one channel space along a value's axis 1.
private struct Segment: Hashable {
    var space: Int
    var mapping: ChannelMapping
}

/// The worklist state of `channelDependencyGroups(in:)`: channel spaces (one
/// per source layer) joined by union-find, each value's layout over them, and
/// the slices and refusals recorded per space. Local to one analysis.
private struct ChannelDependencyAnalysis {
    let graph: Graph
    let shapes: [String: [Int]]
    private var spaceChannels: [Int] = []
    private var spaceSource: [String] = []
    private var parent: [Int] = []
    private var spaceReasons: [[String]] = []
    /// Slices in the order they were found, with the space each belongs to.
    private var slices: [(space: Int, slice: ParameterSlice)] = []
    /// Nodes whose attributes index channels, with the space each entry belongs to.
    private var indexedAttributes: [(space: Int, attributes: ChannelIndexedAttributes)] = []
    /// Channel layout of each traced value; absent for untraced values (graph
    /// inputs, initializers, outputs of refused ops).
    private var layout: [String: [Segment]] = [:]

    init(graph: Graph) throws {
        self.graph = try graph.topologicallySorted()
        shapes = try graph.inferShapes(batch: 1)
    }

    /// The channel rule of every op.
    mutating func visit(_ node: Node) {
        switch node.op {
        case .conv2d(let attributes): visitConvolution(node, attributes)
        case .linear: visitSource(node)
        case .convTranspose(let attributes): visitTransposedConvolution(node, attributes)
        case .resize: passThrough(node)
        case .batchNorm:
            passThrough(node)
            sliceNormParameters(node)
        case .layerNorm:
            passThrough(node)
            sliceLayerNormParameters(node)
        case .relu, .relu6, .leakyRelu, .sigmoid, .tanh, .dropout, .maxPool, .avgPool, .globalAvgPool, .quantizeDequantize:
            passThrough(node)
        case .hardSigmoid, .hardSwish, .gelu:
            passThrough(node)
        case .flatten(let axis): flatten(node, axis: axis)
        case .reshape: refuse(values: [node.inputs[0]], because: "read by Reshape '\(node.name)'")
        case .softmax(let axis):
            if normalized(axis, rank: rank(node.output)) == 1 {
                refuse(values: [node.inputs[0]], because: "read by Softmax '\(node.name)' over channels")
            } else {
                passThrough(node)
            }
        case .add, .sub, .mul, .div: couple(node)
        case .concat(let axis):
            if normalized(axis, rank: rank(node.output)) == 1 { concatenate(node) } else { couple(node) }
        case .slice(let axis, let start, let end):
            if normalized(axis, rank: rank(node.output)) == 1 {
                moveChannels(node) { mapping, channels in mapping.sliced(start..<end, channels: channels) }
            } else {
                passThrough(node)
            }
        case .channelPermute(let order):
            var destination = order
            for (i, j) in order.enumerated() { destination[j] = i }
            moveChannels(node) { mapping, channels in mapping.permuted(destination, channels: channels) }
        }
    }

    /// A Slice along channels or a ChannelPermute: each run of the input's layout
    /// moved (or dropped) by `move`, and the node recorded for every space it
    /// reads, since a removal rewrites its attributes.
    private mutating func moveChannels(_ node: Node, _ move: (ChannelMapping, Int) -> ChannelMapping?) {
        let input = node.inputs[0]
        guard let segments = layout[input] else { return }
        guard segments.allSatisfy({ $0.mapping.block == 1 }) else {
            refuse(values: [input], because: "\(node.op.kind) '\(node.name)' indexes a flattened value's features, not whole channels")
            return
        }
        var moved: [Segment] = []
        for segment in segments {
            indexedAttributes.append((segment.space, ChannelIndexedAttributes(node: node.name, mapping: segment.mapping)))
            if let mapping = move(segment.mapping, spaceChannels[segment.space]) {
                moved.append(Segment(space: segment.space, mapping: mapping))
            }
        }
        if !moved.isEmpty { layout[node.output] = moved }
    }

    private mutating func visitConvolution(_ node: Node, _ attributes: Conv2d) {
        let (inChannels, outChannels) = (shapes[node.inputs[0]]![1], shapes[node.output]![1])
        if attributes.groups == 1 {
            visitSource(node)
        } else if attributes.groups == inChannels && outChannels == inChannels {
            visitDepthwise(node)
        } else {
            refuseGrouped(node, "grouped convolution '\(node.name)' (groups \(attributes.groups))", outChannels: outChannels)
        }
    }

    /// A grouped layer no rule covers: its input channels are refused, and
    /// its output channels start a space that is refused for the same `reason`.
    private mutating func refuseGrouped(_ node: Node, _ reason: String, outChannels: Int) {
        refuse(values: [node.inputs[0]], because: "read by " + reason)
        let space = newSpace(channels: outChannels, source: node.name)
        spaceReasons[space].append("output of " + reason)
        layout[node.output] = [Segment(space: space, mapping: .identity)]
    }

    /// A transposed convolution (weight `[C, O/groups, kh, kw]`): like a
    /// convolution with the weight's axes swapped. Groups 1 is a source whose
    /// output channels are weight axis 1 and whose input channels are axis 0;
    /// one input and one output channel per group follows its input like a
    /// depthwise convolution; other grouped forms are refused.
    private mutating func visitTransposedConvolution(_ node: Node, _ attributes: ConvTranspose2d) {
        let (inChannels, outChannels) = (shapes[node.inputs[0]]![1], shapes[node.output]![1])
        if attributes.groups == 1 {
            visitSource(node, outputAxis: 1, inputAxis: 0)
        } else if attributes.groups == inChannels && outChannels == inChannels {
            visitDepthwise(node)
        } else {
            refuseGrouped(node, "grouped transposed convolution '\(node.name)' (groups \(attributes.groups))",
                          outChannels: outChannels)
        }
    }

    /// A dense convolution or linear layer: a new space for its outputs, and its weight's axis 1 sliced by its input.
    private mutating func visitSource(_ node: Node, outputAxis: Int = 0, inputAxis: Int = 1) {
        let (weight, bias) = (node.inputs[1], optionalInput(node, 2))
        let space = newSpace(channels: shapes[node.output]![1], source: node.name)
        if isInitializer(weight) && (bias.map(isInitializer) ?? true) {
            record(space, weight, node, .filter, axis: outputAxis, .identity)
            if let bias { record(space, bias, node, .bias, axis: 0, .identity) }
        } else {
            spaceReasons[space].append("'\(node.name)' reads parameters that are not initializers")
        }
        for segment in layout[node.inputs[0]] ?? [] {
            if isInitializer(weight) {
                record(segment.space, weight, node, .consumerInput, axis: inputAxis, segment.mapping)
            } else {
                spaceReasons[segment.space].append("read by '\(node.name)', whose weight is not an initializer")
            }
        }
        layout[node.output] = [Segment(space: space, mapping: .identity)]
    }

    /// A depthwise convolution: output channel `c` and filter `c` follow input channel `c`.
    private mutating func visitDepthwise(_ node: Node) {
        guard let segments = layout[node.inputs[0]] else { return }
        let (weight, bias) = (node.inputs[1], optionalInput(node, 2))
        for segment in segments {
            guard isInitializer(weight) && (bias.map(isInitializer) ?? true) else {
                spaceReasons[segment.space].append("read by '\(node.name)', whose parameters are not initializers")
                continue
            }
            record(segment.space, weight, node, .depthwiseFilter, axis: 0, segment.mapping)
            if let bias { record(segment.space, bias, node, .depthwiseBias, axis: 0, segment.mapping) }
        }
        layout[node.output] = segments
    }

    private mutating func sliceNormParameters(_ node: Node) {
        let roles: [SliceRole] = [.normScale, .normShift, .normMean, .normVariance]
        for segment in layout[node.inputs[0]] ?? [] {
            for (k, role) in zip(1..., roles) {
                if isInitializer(node.inputs[k]) {
                    record(segment.space, node.inputs[k], node, role, axis: 0, segment.mapping)
                } else {
                    spaceReasons[segment.space].append("BatchNorm '\(node.name)' reads parameters that are not initializers")
                }
            }
        }
    }

    private mutating func sliceLayerNormParameters(_ node: Node) {
        let parameters = zip(node.inputs.dropFirst(), [SliceRole.layerNormScale, .layerNormShift]).filter { !$0.0.isEmpty }
        for segment in layout[node.inputs[0]] ?? [] {
            for (name, role) in parameters {
                if isInitializer(name) {
                    record(segment.space, name, node, role, axis: 0, segment.mapping)
                } else {
                    spaceReasons[segment.space].append("LayerNorm '\(node.name)' reads parameters that are not initializers")
                }
            }
        }
    }

    private mutating func passThrough(_ node: Node) {
        layout[node.output] = layout[node.inputs[0]]
    }

    private mutating func flatten(_ node: Node, axis: Int) {
        let input = node.inputs[0]
        guard let segments = layout[input] else { return }
        let shape = shapes[input]!
        guard normalized(axis, rank: shape.count) == 1 else {
            refuse(values: [input], because: "Flatten '\(node.name)' at axis \(axis) mixes channels with other axes")
            return
        }
        let inner = shape[2...].reduce(1, *)
        layout[node.output] = segments.map { Segment(space: $0.space, mapping: $0.mapping.flattened(inner: inner)) }
    }

    /// Concat on axis 1: each input's channels shifted by the channels before it.
    private mutating func concatenate(_ node: Node) {
        var offset = 0
        var segments: [Segment] = []
        for input in node.inputs {
            segments += (layout[input] ?? []).map { Segment(space: $0.space, mapping: $0.mapping.shifted(by: offset)) }
            offset += shapes[input]![1]
        }
        if !segments.isEmpty { layout[node.output] = segments }
    }

    /// An op whose inputs share the channel axis (elementwise, or Concat on another axis):
    /// inputs with the output's channel count are joined run by run; inputs broadcasting over channels are left out.
    private mutating func couple(_ node: Node) {
        let outShape = shapes[node.output]!
        guard outShape.count >= 2 else {
            refuse(values: node.inputs, because: "\(node.op.kind) '\(node.name)' has no channel axis")
            return
        }
        let coupled = node.inputs.filter { alignedChannels(of: $0, outputShape: outShape) == outShape[1] }
        let traced = coupled.compactMap { layout[$0] }
        guard let first = traced.first else { return }
        let matched = traced.count == coupled.count
            && coupled.allSatisfy { rank($0) == outShape.count }
            && traced.allSatisfy { sameStructure($0, first) }
        guard matched else {
            refuse(values: coupled, because: "\(node.op.kind) '\(node.name)' combines channels that cannot be matched one to one")
            return
        }
        for other in traced.dropFirst() {
            for (a, b) in zip(first, other) { union(a.space, b.space) }
        }
        layout[node.output] = first
    }

    /// Channels of `value` along the output's axis 1 under numpy broadcasting (1 when it broadcasts over them).
    private func alignedChannels(of value: String, outputShape: [Int]) -> Int {
        let shape = shapes[value]!
        let axis = 1 - (outputShape.count - shape.count)
        return axis >= 0 ? shape[axis] : 1
    }

    private func sameStructure(_ a: [Segment], _ b: [Segment]) -> Bool {
        a.count == b.count && zip(a, b).allSatisfy {
            $0.mapping == $1.mapping && spaceChannels[$0.space] == spaceChannels[$1.space]
        }
    }

    /// Marks every space carried by `values` as not prunable.
    mutating func refuse(values: [String], because reason: String) {
        for value in values {
            for segment in layout[value] ?? [] { spaceReasons[segment.space].append(reason) }
        }
    }

    // MARK: Spaces

    private mutating func newSpace(channels: Int, source: String) -> Int {
        spaceChannels.append(channels)
        spaceSource.append(source)
        spaceReasons.append([])
        parent.append(parent.count)
        return parent.count - 1
    }

    private func find(_ space: Int) -> Int {
        var s = space
        while parent[s] != s { s = parent[s] }
        return s
    }

    private mutating func union(_ a: Int, _ b: Int) {
        let (ra, rb) = (find(a), find(b))
        if ra != rb { parent[max(ra, rb)] = min(ra, rb) }
    }

    private mutating func record(_ space: Int, _ initializer: String, _ node: Node, _ role: SliceRole,
                                 axis: Int, _ mapping: ChannelMapping) {
        slices.append((space, ParameterSlice(initializer: initializer, node: node.name, role: role,
                                             axis: axis, mapping: mapping)))
    }

    // MARK: Result

    /// One group per union-find class, ordered by its first space (its first source in graph order).
    func groups() -> [ChannelGroup] {
        let readers = initializerReaders()
        var roots: [Int] = []
        for space in parent.indices where find(space) == space { roots.append(space) }
        return roots.enumerated().map { id, root in
            let spaces = parent.indices.filter { find($0) == root }
            let groupSlices = slices.filter { find($0.space) == root }.map(\.slice)
            let groupAttributes = indexedAttributes.filter { find($0.space) == root }.map(\.attributes)
            let shared = Set(groupSlices.map(\.initializer)).sorted().compactMap { name -> String? in
                let count = readers[name, default: 0]
                return count > 1 ? "initializer '\(name)' is read by \(count) nodes" : nil
            }
            var seen = Set<String>()
            let reasons = (spaces.flatMap { spaceReasons[$0] } + shared).filter { seen.insert($0).inserted }
            return ChannelGroup(id: id, channels: spaceChannels[root], sourceLayers: spaces.map { spaceSource[$0] },
                                members: members(of: root), slices: groupSlices, indexedAttributes: groupAttributes,
                                notPrunableReasons: reasons)
        }
    }

    private func members(of root: Int) -> [ChannelMember] {
        graph.nodes.flatMap { node in
            (layout[node.output] ?? []).filter { find($0.space) == root }
                .map { ChannelMember(value: node.output, mapping: $0.mapping) }
        }
    }

    /// How many node inputs read each initializer.
    private func initializerReaders() -> [String: Int] {
        var readers: [String: Int] = [:]
        for node in graph.nodes {
            for input in node.inputs where graph.initializers[input] != nil { readers[input, default: 0] += 1 }
        }
        return readers
    }

    // MARK: Helpers

    private func isInitializer(_ name: String) -> Bool { graph.initializers[name] != nil }

    private func rank(_ value: String) -> Int { shapes[value]!.count }

    private func optionalInput(_ node: Node, _ k: Int) -> String? {
        k < node.inputs.count && !node.inputs[k].isEmpty ? node.inputs[k] : nil
    }

    private func normalized(_ axis: Int, rank: Int) -> Int { axis < 0 ? axis + rank : axis }
}

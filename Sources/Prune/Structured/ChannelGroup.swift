import Compress

/// Where channel `c` of a group lies along one axis of a tensor: the indices
/// `start + p·block ..< start + (p+1)·block`, `p` being the channel's position.
///
/// A feature map's own channels have `block` 1, `start` 0 and channel `c` at
/// position `c`; a Concat shifts `start` by the channels of the inputs before
/// it; a Flatten of `[N,C,H,W]` multiplies both by `H·W`, so channel `c`
/// becomes a run of `H·W` features. A Slice or a ChannelPermute moves channels
/// out of order (or leaves some out): then `positions` lists each channel's place.
public struct ChannelMapping: Sendable, Hashable {
    public let start: Int
    public let block: Int
    /// Channel `c`'s position, or nil when this value does not carry channel
    /// `c`; nil altogether when channel `c` sits at position `c`.
    public let positions: [Int?]?

    public init(start: Int, block: Int, positions: [Int?]? = nil) {
        self.start = start; self.block = block; self.positions = positions
    }

    /// A feature map's own channels: channel `c` is index `c`.
    public static let identity = ChannelMapping(start: 0, block: 1)

    /// The indices channel `c` occupies (empty when the value does not carry it).
    public func indices(ofChannel c: Int) -> Range<Int> {
        guard let position = positions.map({ $0[c] }) ?? c else { return start..<start }
        return (start + position * block)..<(start + (position + 1) * block)
    }

    /// How many of the group's `channels` the value carries.
    func carriedCount(channels: Int) -> Int { positions?.count(where: { $0 != nil }) ?? channels }

    /// This mapping seen through a Flatten that turns each index into `inner` consecutive features.
    func flattened(inner: Int) -> ChannelMapping {
        ChannelMapping(start: start * inner, block: block * inner, positions: positions)
    }

    /// This mapping seen `offset` indices further along the axis (a Concat input after others).
    func shifted(by offset: Int) -> ChannelMapping {
        ChannelMapping(start: start + offset, block: block, positions: positions)
    }

    /// The index of each of `channels` channels along the axis (block 1), nil where not carried.
    private func channelIndices(_ channels: Int) -> [Int?] {
        (0..<channels).map { c in (positions.map { $0[c] } ?? c).map { start + $0 } }
    }

    /// This mapping (block 1) seen through a slice keeping the indices `range`;
    /// nil when none of the group's `channels` fall inside.
    func sliced(_ range: Range<Int>, channels: Int) -> ChannelMapping? {
        Self.placing(channelIndices(channels).map { i in i.flatMap { range.contains($0) ? $0 - range.lowerBound : nil } })
    }

    /// This mapping (block 1) seen through a permutation moving index `j` to `destination[j]`.
    func permuted(_ destination: [Int], channels: Int) -> ChannelMapping {
        Self.placing(channelIndices(channels).map { i in i.map { destination[$0] } })!
    }

    /// The block-1 mapping putting channel `c` at `indices[c]`, in the plain
    /// form (`start`, no positions) when the carried channels are all there and
    /// consecutive; nil when no channel is carried.
    static func placing(_ indices: [Int?]) -> ChannelMapping? {
        guard let first = indices.first(where: { $0 != nil }).flatMap({ $0 }) else { return nil }
        if indices.first! == first && indices.enumerated().allSatisfy({ $0.element == first + $0.offset }) {
            return ChannelMapping(start: first, block: 1)
        }
        return ChannelMapping(start: 0, block: 1, positions: indices)
    }
}

/// A graph value whose channel axis (axis 1) carries a group's channels.
public struct ChannelMember: Sendable, Hashable {
    /// The value's name.
    public let value: String
    /// Where the group's channels sit along the value's axis 1.
    public let mapping: ChannelMapping
}

/// What a parameter slice is to the node that reads it.
public enum SliceRole: Sendable, Hashable {
    /// Output channels of a source convolution or linear layer: its weight along axis 0.
    case filter
    /// The bias of a source layer, along axis 0.
    case bias
    /// Input channels of a convolution (weight axis 1) or input features of a linear layer (weight columns).
    case consumerInput
    /// The filter of a depthwise convolution, which follows its input channel (axis 0).
    case depthwiseFilter
    /// The bias of a depthwise convolution (axis 0).
    case depthwiseBias
    /// BatchNorm scale γ.
    case normScale
    /// BatchNorm shift β.
    case normShift
    /// BatchNorm running mean.
    case normMean
    /// BatchNorm running variance.
    case normVariance
    /// LayerNorm (over channels) scale γ.
    case layerNormScale
    /// LayerNorm (over channels) shift β.
    case layerNormShift
}

/// One initializer a group's removal cuts: which axis, and where each channel lies on it.
public struct ParameterSlice: Sendable, Hashable {
    /// The initializer's name.
    public let initializer: String
    /// The node that reads it.
    public let node: String
    public let role: SliceRole
    /// The axis the group's channels lie along.
    public let axis: Int
    public let mapping: ChannelMapping
}

/// A node whose attributes index its input's channels (a Slice's bounds, a
/// ChannelPermute's order): removing channels of the group rewrites them
/// (`Op.removingInputChannels`).
public struct ChannelIndexedAttributes: Sendable, Hashable {
    /// The node's name.
    public let node: String
    /// Where the group's channels sit along the node's input's axis 1.
    public let mapping: ChannelMapping
}

/// Channels that must be removed together: one channel index `c` names the
/// `c`-th output channel of every source layer in the group, the matching
/// channel of every value it flows into (through BatchNorm, activations,
/// pools, Add, Concat, Flatten, depthwise convolutions, Slice and
/// ChannelPermute), and the matching inputs of every layer that reads them.
public struct ChannelGroup: Sendable, Hashable, Identifiable {
    /// The group's index in the list `channelDependencyGroups(in:)` returns.
    public let id: Int
    /// Channels in the group (the output channels of each source layer).
    public let channels: Int
    /// The convolution and linear nodes whose output channels these are, in graph order.
    public let sourceLayers: [String]
    /// Every value carrying the group's channels, in graph order.
    public let members: [ChannelMember]
    /// Every parameter a removal touches.
    public let slices: [ParameterSlice]
    /// Every node whose attributes a removal rewrites.
    public let indexedAttributes: [ChannelIndexedAttributes]
    /// Why the group cannot be pruned; empty when it can.
    public let notPrunableReasons: [String]

    /// True when channels of this group may be removed.
    public var isPrunable: Bool { notPrunableReasons.isEmpty }

    /// Names of the values carrying the group's channels (each once, in graph order).
    public var valueNames: [String] {
        var seen = Set<String>()
        return members.map(\.value).filter { seen.insert($0).inserted }
    }

    /// The slices with `role`.
    public func slices(_ role: SliceRole) -> [ParameterSlice] { slices.filter { $0.role == role } }
}

import Compress

/// Where channel `c` of a group lies along one axis of a tensor: the indices
/// `start + c·block ..< start + (c+1)·block`.
///
/// A feature map's own channels have `block` 1 and `start` 0; a Concat shifts
/// `start` by the channels of the inputs before it; a Flatten of `[N,C,H,W]`
/// multiplies both by `H·W`, so channel `c` becomes a run of `H·W` features.
public struct ChannelMapping: Sendable, Hashable {
    public let start: Int
    public let block: Int

    public init(start: Int, block: Int) {
        self.start = start; self.block = block
    }

    /// A feature map's own channels: channel `c` is index `c`.
    public static let identity = ChannelMapping(start: 0, block: 1)

    /// The indices channel `c` occupies.
    public func indices(ofChannel c: Int) -> Range<Int> {
        (start + c * block)..<(start + (c + 1) * block)
    }

    /// This mapping seen through a Flatten that turns each index into `inner` consecutive features.
    func flattened(inner: Int) -> ChannelMapping {
        ChannelMapping(start: start * inner, block: block * inner)
    }

    /// This mapping seen `offset` indices further along the axis (a Concat input after others).
    func shifted(by offset: Int) -> ChannelMapping {
        ChannelMapping(start: start + offset, block: block)
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

/// Channels that must be removed together: one channel index `c` names the
/// `c`-th output channel of every source layer in the group, the matching
/// channel of every value it flows into (through BatchNorm, activations,
/// pools, Add, Concat, Flatten, depthwise convolutions), and the matching
/// inputs of every layer that reads them.
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

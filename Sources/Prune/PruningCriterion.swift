import Compress

/// How the importance of a weight or channel is judged: a lower score is
/// pruned first. The one criterion type of the library, spelled as users type
/// it (`--criterion bn-scale`, `criterion: taylor`).
///
/// `magnitude` ranks single weights (weight granularity); the others rank
/// channels (`channelImportance(of:in:criterion:calibration:threads:)`).
/// The prune pass also accepts `auto`, which it resolves once, when it is
/// created: magnitude for weights, L1 for channels (`automatic(for:)`).
///
/// Every channel criterion but `apoz` is normalized per contributor, so groups
/// are comparable in a global ranking: each source layer's (or BatchNorm's, or
/// feature map's) per-channel scores are divided by their mean over the
/// group's channels, and a group's score is the mean of its contributors'
/// normalized scores. A channel scoring 1 is as important as the average
/// channel of its group; a global ranking thus removes the channels that fall
/// furthest below their own group's average, whatever the layer's fan-in or
/// weight scale. A contributor whose scores are all zero stays zero.
public enum PruningCriterion: String, Sendable, CaseIterable {
    /// |w| of each single weight (Han et al., "Learning both Weights and
    /// Connections for Efficient Neural Networks", NeurIPS 2015).
    case magnitude
    /// L1 norm of each source filter, Σ|w| (Li et al., "Pruning Filters for
    /// Efficient ConvNets", ICLR 2017).
    case l1
    /// L2 norm of each source filter, √Σw² (the L2 variant Li et al. compare).
    case l2
    /// |γ| of the group's BatchNorm scales (Liu et al., "Learning Efficient
    /// Convolutional Networks through Network Slimming", ICCV 2017).
    case bnScale = "bn-scale"
    /// First-order Taylor expansion of the loss change when a feature map is
    /// zeroed, |mean over positions of activation × gradient|, averaged over
    /// the calibration images one by one (Molchanov et al., "Pruning
    /// Convolutional Neural Networks for Resource Efficient Inference", ICLR 2017).
    /// Needs labelled calibration images.
    case taylor
    /// 1 − APoZ, the average percentage of zeros of each channel after the
    /// group's ReLUs on the calibration images (Hu et al., "Network Trimming:
    /// A Data-Driven Neuron Pruning Approach towards Efficient Deep
    /// Architectures", 2016). Already a fraction comparable across layers, so
    /// not normalized.
    case apoz

    /// The spelling that lets the pass choose by granularity.
    public static let automaticName = "auto"

    /// What a `criterion` parameter may say: `auto`, then every criterion.
    public static var parameterChoices: [String] { [automaticName] + allCases.map(\.rawValue) }

    /// What `auto` means for `granularity`: magnitude for weights, L1 for channels.
    public static func automatic(for granularity: PruningGranularity) -> PruningCriterion {
        granularity == .weight ? .magnitude : .l1
    }

    /// True for the criteria that rank whole channels (all but `magnitude`).
    public var ranksChannels: Bool { self != .magnitude }

    /// True for the data-driven criteria, which run the model on calibration images.
    public var needsImages: Bool { self == .apoz || self == .taylor }

    /// True when the criterion also needs the calibration images' labels.
    public var needsLabels: Bool { self == .taylor }
}

/// The images the data-driven criteria (`taylor`, `apoz`) run the model on:
/// pixels in [0, 1] shaped `[N] + model.inputShape` (the model's own input
/// normalization is applied by whoever runs it), with one label per image
/// where the criterion needs them.
public struct CalibrationImages: Sendable, Equatable {
    public var images: Tensor
    /// One class index per image; `taylor` needs them, `apoz` does not.
    public var labels: [Int32]?

    public init(images: Tensor, labels: [Int32]? = nil) {
        self.images = images; self.labels = labels
    }

    /// Labelled images, e.g. a batch of the validation split.
    public init(_ labelled: LabeledImages) {
        self.init(images: labelled.images, labels: labelled.labels)
    }
}

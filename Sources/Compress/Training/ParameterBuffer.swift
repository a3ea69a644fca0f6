/// What a parameter is to the layer that reads it; optimizers use it to
/// decide defaults such as whether weight decay applies.
public enum ParameterRole: Sendable, Hashable {
    /// A convolution or linear weight.
    case weight
    /// A convolution or linear bias.
    case bias
    /// A BatchNorm or LayerNorm scale (gamma).
    case normScale
    /// A BatchNorm or LayerNorm shift (beta).
    case normBias
    /// A BatchNorm running mean: updated by training-mode forwards, never by an optimizer.
    case runningMean
    /// A BatchNorm running variance: updated by training-mode forwards, never by an optimizer.
    case runningVariance

    /// True for the roles weight decay skips by default (biases and BatchNorm parameters).
    public var isBiasOrNorm: Bool { self != .weight }
}

/// One named tensor a `TrainingGraph` trains or tracks: its current values
/// and its accumulated gradient, each in a dense float buffer the optimizer
/// updates in place (no copies per step).
///
/// The buffers belong to the parameter and live as long as it does; read or
/// write them only while the owning graph is not running.
public final class ParameterBuffer {
    /// The initializer's name in the model.
    public let name: String
    public let shape: [Int]
    public let role: ParameterRole
    /// Current values, row-major in `shape`.
    public let values: UnsafeMutableBufferPointer<Float>
    /// The gradient summed over every `backward` since the last `zeroGradient()`.
    public let gradient: UnsafeMutableBufferPointer<Float>
    /// Hooks the optimizer applies to this parameter (freeze, mask, codebook, rate).
    public var policy = ParameterPolicy()

    /// A parameter holding a copy of `tensor` (widened to float32) with a zero gradient.
    public init(name: String, role: ParameterRole, tensor: Tensor) {
        self.name = name
        self.role = role
        shape = tensor.shape
        values = .allocate(capacity: tensor.count)
        gradient = .allocate(capacity: tensor.count)
        _ = values.initialize(from: tensor.floats)
        gradient.initialize(repeating: 0)
    }

    deinit {
        values.deallocate()
        gradient.deallocate()
    }

    /// Number of elements.
    public var count: Int { values.count }

    /// The current values as a tensor.
    public var tensor: Tensor { Tensor(shape: shape, floats: Array(values)) }

    /// The accumulated gradient as a tensor.
    public var gradientTensor: Tensor { Tensor(shape: shape, floats: Array(gradient)) }

    /// Overwrites the values (e.g. from a checkpoint). Traps on a shape mismatch.
    public func load(_ tensor: Tensor) {
        precondition(tensor.shape == shape, "parameter '\(name)' is \(shape), got \(tensor.shape)")
        _ = values.update(from: tensor.floats)
    }

    /// Sets the accumulated gradient to zero.
    public func zeroGradient() { gradient.update(repeating: 0) }
}

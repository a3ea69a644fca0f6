import Foundation

/// Updates parameters in place from their accumulated gradients.
///
/// `step` applies each parameter's ``ParameterPolicy``: frozen parameters are
/// skipped; masked ones have their pruned gradients zeroed before the update
/// and the mask re-applied after it; codebook-tied ones update their centroids
/// with the summed gradients of each centroid's members and are then
/// re-materialized; shadow-tied ones (quantization-aware training) update
/// their float32 shadow weights with the straight-through gradient and write
/// the shadow weights' rounding into the values; the learning rate is scaled
/// by the parameter's multiplier.
/// Weight decay applies to weights only unless `decaysBiasesAndNormParameters`
/// (or a policy's `appliesWeightDecay`) says otherwise.
///
/// Gradients are not cleared by `step`: call `TrainingGraph.zeroGradients()`.
public protocol Optimizer: AnyObject {
    /// The weight decay coefficient.
    var weightDecay: Float { get }
    /// Whether weight decay also applies to biases and BatchNorm scales and shifts.
    var decaysBiasesAndNormParameters: Bool { get }
    /// The optimizer's rule on one buffer: `key` names its state (momentum, moments).
    func update(_ values: UnsafeMutableBufferPointer<Float>, gradient: UnsafeMutableBufferPointer<Float>,
                key: String, learningRate: Float, weightDecay: Float)
}

extension Optimizer {
    /// One step over the trainable parameters of `graph`.
    public func step(_ graph: TrainingGraph, learningRate: Float) {
        step(graph.parameterNames.map { graph.parameters[$0]! }, learningRate: learningRate)
    }

    /// One step over `parameters`, with their policies.
    public func step(_ parameters: [ParameterBuffer], learningRate: Float) {
        for parameter in parameters where !parameter.policy.isFrozen {
            step(parameter, learningRate: learningRate * parameter.policy.learningRateMultiplier)
        }
    }

    private func step(_ p: ParameterBuffer, learningRate: Float) {
        let decays = p.policy.appliesWeightDecay ?? (!p.role.isBiasOrNorm || decaysBiasesAndNormParameters)
        let decay = decays ? weightDecay : 0
        if let mask = p.policy.mask {
            for i in 0..<p.count where mask[i] == 0 { p.gradient[i] = 0 }
        }
        if var codebook = p.policy.codebook {
            var centroidGradient = codebook.centroidGradients(p.gradient)
            codebook.centroids.withUnsafeMutableBufferPointer { centroids in
                centroidGradient.withUnsafeMutableBufferPointer { gradient in
                    update(centroids, gradient: gradient, key: p.name + "#codebook", learningRate: learningRate,
                           weightDecay: decay)
                }
            }
            p.policy.codebook = codebook
            codebook.materialize(into: p.values)
        } else if p.policy.shadow != nil {
            let mask = p.policy.mask
            p.policy.shadow!.straightThrough(p.gradient)
            p.policy.shadow!.values.withUnsafeMutableBufferPointer { shadow in
                update(shadow, gradient: p.gradient, key: p.name, learningRate: learningRate, weightDecay: decay)
                if let mask {
                    for i in 0..<shadow.count { shadow[i] *= mask[i] }
                }
            }
            p.policy.shadow!.materialize(into: p.values)
        } else {
            update(p.values, gradient: p.gradient, key: p.name, learningRate: learningRate, weightDecay: decay)
        }
        if let mask = p.policy.mask {
            for i in 0..<p.count { p.values[i] *= mask[i] }
        }
    }
}

/// Per-parameter optimizer state: a float buffer (momentum, moment estimates).
final class OptimizerSlot {
    let buffer: UnsafeMutableBufferPointer<Float>
    /// Updates applied so far (Adam's bias correction).
    var steps = 0

    init(count: Int) {
        buffer = .allocate(capacity: count)
        buffer.initialize(repeating: 0)
    }

    deinit { buffer.deallocate() }
}

extension [String: OptimizerSlot] {
    /// The slot for `key`, created (zeroed) on first use or when the size changed.
    mutating func slot(_ key: String, count: Int) -> OptimizerSlot {
        if let s = self[key], s.buffer.count == count { return s }
        let s = OptimizerSlot(count: count)
        self[key] = s
        return s
    }
}

/// Stochastic gradient descent with momentum, as PyTorch implements it
/// (Sutskever et al., "On the importance of initialization and momentum in
/// deep learning", ICML 2013): with `g = ∇ + λw` (coupled weight decay),
/// `v = μv + g` (`v = g` on the first step), then `w -= lr · v`, or with
/// Nesterov momentum `w -= lr · (g + μv)`.
public final class SGD: Optimizer {
    public let momentum: Float
    public let nesterov: Bool
    public let weightDecay: Float
    public let decaysBiasesAndNormParameters: Bool
    var velocities: [String: OptimizerSlot] = [:]

    public init(momentum: Float = 0, nesterov: Bool = false, weightDecay: Float = 0,
                decaysBiasesAndNormParameters: Bool = false) {
        precondition(!nesterov || momentum > 0, "Nesterov momentum needs momentum > 0")
        self.momentum = momentum; self.nesterov = nesterov; self.weightDecay = weightDecay
        self.decaysBiasesAndNormParameters = decaysBiasesAndNormParameters
    }

    public func update(_ w: UnsafeMutableBufferPointer<Float>, gradient: UnsafeMutableBufferPointer<Float>,
                       key: String, learningRate lr: Float, weightDecay decay: Float) {
        guard momentum != 0 else {
            for i in 0..<w.count { w[i] -= lr * (gradient[i] + decay * w[i]) }
            return
        }
        let slot = velocities.slot(key, count: w.count)
        let (v, first, mu) = (slot.buffer, slot.steps == 0, momentum)
        slot.steps += 1
        for i in 0..<w.count {
            let g = gradient[i] + decay * w[i]
            let velocity = first ? g : mu * v[i] + g
            v[i] = velocity
            w[i] -= lr * (nesterov ? g + mu * velocity : velocity)
        }
    }
}

/// Adam (Kingma & Ba, "Adam: A Method for Stochastic Optimization", ICLR 2015)
/// with bias-corrected moments, and AdamW (Loshchilov & Hutter, "Decoupled
/// Weight Decay Regularization", ICLR 2019) when `decoupledWeightDecay`:
/// Adam adds `λw` to the gradient; AdamW instead shrinks `w *= 1 - lr·λ`
/// before the Adam update.
public final class Adam: Optimizer {
    public let beta1: Float
    public let beta2: Float
    public let epsilon: Float
    public let weightDecay: Float
    public let decoupledWeightDecay: Bool
    public let decaysBiasesAndNormParameters: Bool
    var moments: [String: OptimizerSlot] = [:]
    var squaredMoments: [String: OptimizerSlot] = [:]

    public init(beta1: Float = 0.9, beta2: Float = 0.999, epsilon: Float = 1e-8, weightDecay: Float = 0,
                decoupledWeightDecay: Bool = false, decaysBiasesAndNormParameters: Bool = false) {
        self.beta1 = beta1; self.beta2 = beta2; self.epsilon = epsilon; self.weightDecay = weightDecay
        self.decoupledWeightDecay = decoupledWeightDecay
        self.decaysBiasesAndNormParameters = decaysBiasesAndNormParameters
    }

    /// AdamW: Adam with decoupled weight decay (PyTorch's default decay 0.01).
    public static func adamW(beta1: Float = 0.9, beta2: Float = 0.999, epsilon: Float = 1e-8,
                             weightDecay: Float = 0.01, decaysBiasesAndNormParameters: Bool = false) -> Adam {
        Adam(beta1: beta1, beta2: beta2, epsilon: epsilon, weightDecay: weightDecay, decoupledWeightDecay: true,
             decaysBiasesAndNormParameters: decaysBiasesAndNormParameters)
    }

    public func update(_ w: UnsafeMutableBufferPointer<Float>, gradient: UnsafeMutableBufferPointer<Float>,
                       key: String, learningRate lr: Float, weightDecay decay: Float) {
        let m = moments.slot(key, count: w.count)
        let v = squaredMoments.slot(key, count: w.count)
        m.steps += 1
        let t = Float(m.steps)
        let (correction1, correction2) = (1 - pow(beta1, t), 1 - pow(beta2, t))
        let (coupled, shrink) = decoupledWeightDecay ? (Float(0), 1 - lr * decay) : (decay, Float(1))
        let (first, second) = (m.buffer, v.buffer)
        for i in 0..<w.count {
            let g = gradient[i] + coupled * w[i]
            first[i] = beta1 * first[i] + (1 - beta1) * g
            second[i] = beta2 * second[i] + (1 - beta2) * g * g
            let step = lr * (first[i] / correction1) / ((second[i] / correction2).squareRoot() + epsilon)
            w[i] = w[i] * shrink - step
        }
    }
}

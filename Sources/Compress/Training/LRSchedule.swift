import Foundation

/// A learning rate per optimizer step (`step` counts from 0).
public enum LRSchedule: Sendable, Equatable {
    /// The same rate every step.
    case constant(Float)
    /// `base · gamma^⌊step / stepSize⌋` (step decay, as in He et al. 2016).
    case step(base: Float, stepSize: Int, gamma: Float)
    /// Cosine annealing from `base` to `floor` over `totalSteps`, then `floor`
    /// (Loshchilov & Hutter, "SGDR: Stochastic Gradient Descent with Warm Restarts", ICLR 2017, without restarts).
    case cosine(base: Float, floor: Float, totalSteps: Int)
    /// One cycle (Smith, "A disciplined approach to neural network
    /// hyper-parameters", 2018; Smith & Topin, "Super-Convergence", 2019):
    /// linear warm-up from `peak / initialDivisor` to `peak` over the first
    /// `warmupFraction` of `totalSteps`, then cosine annealing to
    /// `peak / finalDivisor` (PyTorch's `OneCycleLR` defaults: 25, 10⁴).
    case oneCycle(peak: Float, totalSteps: Int, warmupFraction: Float = 0.3,
                  initialDivisor: Float = 25, finalDivisor: Float = 10_000)

    /// The learning rate at optimizer step `step`.
    public func learningRate(atStep step: Int) -> Float {
        switch self {
        case .constant(let rate):
            return rate
        case .step(let base, let stepSize, let gamma):
            return base * pow(gamma, Float(step / max(stepSize, 1)))
        case .cosine(let base, let floor, let totalSteps):
            return Self.cosine(from: base, to: floor, progress: Float(step) / Float(max(totalSteps, 1)))
        case .oneCycle(let peak, let totalSteps, let warmupFraction, let initialDivisor, let finalDivisor):
            let warmup = max(1, Int((Float(totalSteps) * warmupFraction).rounded()))
            let start = peak / initialDivisor
            if step < warmup { return start + (peak - start) * Float(step) / Float(warmup) }
            let progress = Float(step - warmup) / Float(max(totalSteps - warmup, 1))
            return Self.cosine(from: peak, to: peak / finalDivisor, progress: progress)
        }
    }

    private static func cosine(from start: Float, to end: Float, progress: Float) -> Float {
        let p = min(max(progress, 0), 1)
        return end + (start - end) * (1 + cos(Float.pi * p)) / 2
    }
}

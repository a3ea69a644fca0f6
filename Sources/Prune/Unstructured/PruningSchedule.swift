/// When pruning happens: all at once, or in steps with fine-tuning between.
public enum PruningSchedule: String, Sendable, CaseIterable {
    /// Prune to the target once (then optionally fine-tune).
    case oneShot = "one-shot"
    /// Han et al. 2015's prune-retrain loop: each step removes the same
    /// fraction of the weights still kept, so the kept fraction falls
    /// geometrically from the starting sparsity to the target.
    case iterative
    /// Automated gradual pruning (Zhu & Gupta, "To prune, or not to prune",
    /// 2017): sparsity follows `s_t = s_f + (s_0 − s_f)(1 − t/n)³`, pruning
    /// fast while many redundant weights remain and slowly near the target.
    case agp

    /// Steps used when none are given.
    public var defaultSteps: Int {
        switch self {
        case .oneShot: 1
        case .iterative: 4
        case .agp: 8
        }
    }

    /// The sparsity to reach after step `step` (1...steps), from `start` towards `target`.
    public func sparsity(afterStep step: Int, of steps: Int, start: Double, target: Double) -> Double {
        guard step < steps, target > start else { return max(start, target) }
        let t = Double(step) / Double(steps)
        switch self {
        case .oneShot: return target
        case .iterative:
            let keptStart = 1 - start, keptEnd = 1 - target
            return 1 - keptStart * pow(keptEnd / keptStart, t)
        case .agp:
            let r = 1 - t
            return target + (start - target) * r * r * r
        }
    }

    /// The threshold multiple for step `step` of a threshold-std target: a
    /// linear ramp, so each retraining round raises the threshold (Han et al. 2015).
    public func thresholdMultiple(afterStep step: Int, of steps: Int, target: Double) -> Double {
        self == .oneShot ? target : target * Double(step) / Double(steps)
    }
}

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

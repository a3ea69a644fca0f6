import Compress

/// Why a decomposition or factorization refused its input or failed.
///
/// Every refusal is one of these cases with the values at fault; nothing in
/// this library traps on bad input or returns non-finite factors.
public enum LowRankError: Error, Equatable, Sendable, CustomStringConvertible {
    /// A requested rank is 0 or above the largest rank the shape allows.
    case rankOutOfRange(rank: Int, fullRank: Int)
    /// An energy fraction outside (0, 1].
    case energyOutOfRange(Float)
    /// A LAPACK routine returned a nonzero `info`.
    case lapackFailure(routine: String, info: Int)
    /// A tensor whose shape does not fit the operation.
    case badShape(what: String, shape: [Int], expected: String)
    /// A tensor with NaN or infinite values.
    case nonFiniteInput(what: String)
    /// A grouped or depthwise convolution given to a method that needs `groups == 1`.
    case groupedConvolution(groups: Int)
    /// CP-ALS produced non-finite or exploding factors.
    case cpDiverged(rank: Int, iteration: Int)

    public var description: String {
        switch self {
        case .rankOutOfRange(let rank, let fullRank):
            "rank \(rank) is out of range: it must be between 1 and the full rank \(fullRank)"
        case .energyOutOfRange(let e):
            "energy \(e) is out of range: it must be in (0, 1]"
        case .lapackFailure(let routine, let info):
            "\(routine) failed with info = \(info)"
        case .badShape(let what, let shape, let expected):
            "\(what) has shape \(shape); expected \(expected)"
        case .nonFiniteInput(let what):
            "\(what) holds NaN or infinite values"
        case .groupedConvolution(let groups):
            "the convolution has groups = \(groups); this method needs groups = 1"
        case .cpDiverged(let rank, let iteration):
            "CP-ALS at rank \(rank) diverged at iteration \(iteration) (non-finite or exploding factors); "
                + "try a lower rank or Tucker-2"
        }
    }
}

/// How many singular values (components) to keep.
public enum RankSelection: Sendable, Hashable {
    /// Exactly this many, between 1 and the full rank.
    case rank(Int)
    /// The smallest rank keeping this fraction, in (0, 1], of the sum of squared singular values.
    case energy(Float)
    /// The rank empirical variational Bayesian matrix factorization estimates
    /// (`vbmfRank`), at least 1: the singular values above the noise level.
    case vbmf
}

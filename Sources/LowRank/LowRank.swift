import Compress

/// Low-rank factorization: decompositions and the factor layers they become.
///
/// Today the library holds the decompositions as plain functions returning factors
/// (`SingularValueDecomposition` through LAPACK `sgesdd`, `tucker2`, `cpALS`,
/// `vbmfRank`) and the factorizations of one layer into a chain of
/// `FactorLayer`s (`SVDFactorization.linear`, `.channel`, `.spatial`, `.separable`,
/// `TensorFactorization.tucker2`, `.cp`), and the `lowrank` pass
/// (`LowRankPass`) that rewrites a graph's layers into those chains. The
/// library depends on `Compress` (plus the BLAS and LAPACK system libraries);
/// nothing in `Compress` depends on it.
public enum LowRankLibrary {
    /// The passes this library provides.
    public static let passes: [any Pass.Type] = [LowRankPass.self]
}

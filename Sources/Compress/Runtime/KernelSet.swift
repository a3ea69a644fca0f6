import SIMDKernels
import Synchronization

/// The instruction set the runtime's kernels are compiled for, chosen once
/// per `Session` at plan time.
///
/// - `avx512`: the AVX2 kernels, with dense and pointwise convolutions on
///   AVX-512 registers (16 output channels per register over the same NCHW8c
///   layout).
/// - `avx2`: direct convolutions and the other feature-map ops over
///   channel-blocked NCHW8c values with AVX2 and FMA (`SIMDKernels`).
/// - `portable`: plain NCHW, im2col + BLAS convolutions and plain Swift for
///   the rest; runs on any CPU.
///
/// The same model, input and kernel set give the same bytes. `avx512` and
/// `avx2` do the same multiply-adds in the same order (same bytes too);
/// `portable` sums in another order, so it agrees with them within rounding.
public enum KernelSet: String, CaseIterable, Sendable, Codable {
    case avx512, avx2, portable

    /// Whether this CPU (and its OS) can run the set.
    public var isSupported: Bool {
        switch self {
        case .avx512: cpuSupportsAVX512
        case .avx2: cpuSupportsBlockedKernels
        case .portable: true
        }
    }

    /// The fastest set this CPU runs: the first supported of `avx512`, `avx2`, `portable`.
    public static var best: KernelSet { allCases.first { $0.isSupported }! }

    /// The sets this CPU runs, best first.
    public static var supported: [KernelSet] { allCases.filter(\.isSupported) }

    /// `self`, or a clear error when this CPU cannot run it.
    public func checkedSupported() throws -> KernelSet {
        guard isSupported else { throw KernelSetError.unsupported(self) }
        return self
    }

    private static let defaultForProcess = Mutex<KernelSet?>(nil)

    /// The set a `Session` plans with when none is given: `best`, unless the
    /// CLI's `--kernels` chose another for the whole process (like OpenBLAS's
    /// thread count, a process-wide setting; library code passes a set explicitly instead).
    public static var processDefault: KernelSet {
        get { defaultForProcess.withLock { $0 } ?? best }
        set { defaultForProcess.withLock { $0 = newValue } }
    }
}

/// A kernel set this CPU cannot run was asked for.
public enum KernelSetError: Error, Equatable, CustomStringConvertible {
    case unsupported(KernelSet)

    public var description: String {
        switch self {
        case .unsupported(let set):
            let lacking = set == .avx512 ? "AVX-512F and AVX-512VL" : "AVX2 and FMA"
            return "kernel set '\(set.rawValue)' needs \(lacking), which this CPU (or its OS) lacks; "
                + "it runs: \(KernelSet.supported.map(\.rawValue).joined(separator: ", "))"
        }
    }
}

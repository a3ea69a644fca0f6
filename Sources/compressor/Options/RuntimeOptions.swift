import ArgumentParser
import Compress

/// `--threads N`: the one declaration of a single thread count (commands that
/// time several thread counts take `MeasurementOptions` instead).
struct ThreadsOption: ParsableArguments {
    @Option(name: .long, help: "Threads for the runtime, training and BLAS.")
    var threads = 1

    /// More threads than this is a typo, not a machine: each is a real thread of the worker pool.
    static let maximum = 256

    func validate() throws {
        guard (1...Self.maximum).contains(threads) else {
            throw ValidationError("--threads must be between 1 and \(Self.maximum), got \(threads)")
        }
    }
}

/// `--seed S`: the one declaration of the seed every random choice derives from.
struct SeedOption: ParsableArguments {
    @Option(name: .long, help: "Seed for every random choice (initialization, shuffling, augmentation, dropout, sampling).")
    var seed: UInt64 = 0
}

/// `--kernels auto|avx512|avx2|portable`: the one declaration of the kernel
/// set (`KernelSet`) every command that computes runs with.
///
/// Validating it makes the set the process's `KernelSet.processDefault`, so
/// every session the command plans (evaluation, fine-tuning, calibration,
/// teachers, timing) uses it; a set this CPU lacks is refused before any work.
struct KernelsOption: ParsableArguments {
    @Option(name: .long, help: ArgumentHelp(
        "Kernel instruction set: auto (the best this CPU runs: \(KernelSet.best.rawValue)), avx512, avx2 or portable "
            + "(plain Swift and BLAS). Results are reproducible per set; sets agree within rounding.",
        valueName: "set"))
    var kernels = "auto"

    /// The set asked for (`auto`: the best this CPU runs).
    func kernelSet() throws -> KernelSet {
        if kernels == "auto" { return .best }
        guard let set = KernelSet(rawValue: kernels) else {
            throw ValidationError("--kernels must be auto, \(KernelSet.allCases.map(\.rawValue).joined(separator: ", ")); got '\(kernels)'")
        }
        return set
    }

    func validate() throws {
        do {
            KernelSet.processDefault = try kernelSet().checkedSupported()
        } catch let error as KernelSetError {
            throw ValidationError("--kernels: \(error)")
        }
    }
}

/// `--max-memory SIZE`: the one declaration of the memory budget
/// (`MemoryBudget`) every command that loads models and computes runs with.
///
/// Validating it makes the budget the process's `MemoryBudget.processDefault`,
/// so every loader, plan and training step the command makes checks what it
/// would allocate against it first and refuses, naming the largest tensor,
/// instead of running out of memory.
struct MaxMemoryOption: ParsableArguments {
    @Option(name: .long, help: ArgumentHelp(
        "Most memory for tensors (weights, activations, workspace, training state, data): bytes, "
            + "a decimal (512MB, 1.5GB) or binary unit (512MiB, 2GiB; 2G is 2GiB), or a share of memory (50%). "
            + "Work that needs more is refused before it starts. Default: "
            + "\(Int(MemoryBudget.defaultFraction * 100))% of physical memory or of the container's limit "
            + "(here \(MemoryBudget.format(bytes: MemoryBudget.machineDefault.bytes))).",
        valueName: "size"))
    var maxMemory: String?

    func validate() throws {
        guard let maxMemory else { return }
        do {
            var budget = try MemoryBudget(parsing: maxMemory)
            budget.origin = "--max-memory \(budget.origin)"
            MemoryBudget.processDefault = budget
        } catch {
            throw ValidationError("--max-memory: \(error)")
        }
    }
}

/// How a single-valued command runs: `--threads`, `--seed`, `--kernels` and `--max-memory`.
struct RuntimeOptions: ParsableArguments {
    @OptionGroup var threadsOption: ThreadsOption
    @OptionGroup var seedOption: SeedOption
    @OptionGroup var kernelsOption: KernelsOption
    @OptionGroup var maxMemoryOption: MaxMemoryOption

    var threads: Int { threadsOption.threads }
    var seed: UInt64 { seedOption.seed }
}

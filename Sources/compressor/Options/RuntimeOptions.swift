import ArgumentParser

/// `--threads N`: the one declaration of a single thread count (commands that
/// time several thread counts take `MeasurementOptions` instead).
struct ThreadsOption: ParsableArguments {
    @Option(name: .long, help: "Threads for the runtime, training and BLAS.")
    var threads = 1

    func validate() throws {
        guard threads >= 1 else { throw ValidationError("--threads must be at least 1") }
    }
}

/// `--seed S`: the one declaration of the seed every random choice derives from.
struct SeedOption: ParsableArguments {
    @Option(name: .long, help: "Seed for every random choice (initialization, shuffling, augmentation, dropout, sampling).")
    var seed: UInt64 = 0
}

/// How a single-valued command runs: `--threads` and `--seed` (the kernel set
/// joins them when the runtime gets one).
struct RuntimeOptions: ParsableArguments {
    @OptionGroup var threadsOption: ThreadsOption
    @OptionGroup var seedOption: SeedOption

    var threads: Int { threadsOption.threads }
    var seed: UInt64 { seedOption.seed }
}

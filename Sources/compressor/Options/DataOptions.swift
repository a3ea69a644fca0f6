import ArgumentParser

/// `--data` and `--validation-count`, for commands that read a dataset.
struct DataOptions: ParsableArguments {
    @Option(name: .long, help: ArgumentHelp("Dataset directory: IDX files (MNIST layout, raw or .gz) or .npy arrays.",
                                            valueName: "dir"))
    var data: String?

    @Option(name: .long, help: "Training images held out for validation (the last N of the training split).")
    var validationCount = 5000
}

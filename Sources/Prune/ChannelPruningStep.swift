import Compress

extension PrunePass {
    /// Structured pruning: removes whole channels through their dependency groups.
    func pruneChannels(_ model: Model, context: PassContext) throws -> PassOutcome {
        throw ParameterError(pass: Self.name, problems: ["channel granularity is being integrated"])
    }
}

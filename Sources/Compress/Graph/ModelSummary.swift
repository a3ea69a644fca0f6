/// Counts of a model that `info`, pass records and reports share.
public struct ModelSummary: Sendable, Equatable {
    /// Elements in all initializers.
    public var parameters: Int
    /// Non-zero elements in all initializers.
    public var nonZeroParameters: Int
    /// Conv and Linear multiply-accumulates for one sample.
    public var macs: Int

    public init(_ model: Model) throws {
        parameters = model.graph.parameterCount
        nonZeroParameters = model.graph.nonZeroParameterCount
        macs = try model.graph.macsPerSample()
    }
}

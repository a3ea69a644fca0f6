extension Graph {
    /// Checks that `values` supplies every graph input as a float tensor of
    /// shape `[N] + sampleShape` with one `N` for all, and returns `N`.
    func validatedBatchSize(of values: [String: Tensor]) throws(RuntimeError) -> Int {
        var batch: Int? = nil
        for input in inputs {
            guard let t = values[input.name] else {
                throw .missingInput(name: input.name, supplied: Array(values.keys))
            }
            guard t.dtype == .float32 || t.dtype == .float16 else { throw .notFloat(name: input.name, dtype: t.dtype) }
            guard t.rank == input.sampleShape.count + 1, Array(t.shape.dropFirst()) == input.sampleShape else {
                throw .wrongInputShape(name: input.name, expectedSample: input.sampleShape, got: t.shape)
            }
            if let b = batch, b != t.shape[0] { throw .inconsistentBatch(name: input.name, expected: b, got: t.shape[0]) }
            batch = t.shape[0]
        }
        return batch ?? 1
    }
}

extension Normalization {
    /// Per-channel `(mean, std)` for an input with `channels` channels (a
    /// single mean/std applies to all), computed as `(x - mean) / std`: a
    /// subtraction then a division, each rounded, as the exported ONNX `Sub`
    /// and `Div` compute it, so a quantizer reading the normalized input sees
    /// the same bits here and in onnxruntime.
    func perChannel(channels: Int) throws(RuntimeError) -> InputNormalization {
        guard mean.count == std.count, mean.count == channels || mean.count == 1 else {
            throw .normalizationMismatch(channels: channels, mean: mean.count, std: std.count)
        }
        let m = mean.count == 1 ? [Float](repeating: mean[0], count: channels) : mean
        let s = std.count == 1 ? [Float](repeating: std[0], count: channels) : std
        return InputNormalization(mean: m, std: s)
    }
}

/// A model's input normalization with one mean and one std per channel.
struct InputNormalization: Sendable {
    var mean: [Float]
    var std: [Float]
}

extension Model {
    /// The first graph input's name, or an error when the graph has none.
    func firstInputName() throws(RuntimeError) -> String {
        guard let first = graph.inputs.first, !graph.outputs.isEmpty else { throw .noGraphInputOrOutput }
        return first.name
    }
}

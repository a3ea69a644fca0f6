/// Turns an input normalization written as graph ops back into model metadata.
///
/// The exporter writes `(x - mean) / std` as a Sub and a Div with per-channel
/// `[C,1,1]` constants right after the graph input, so any runtime reproduces
/// our accuracy from pixels in [0,1]. On import, that pattern (from our
/// exporter or any other) becomes `ModelMetadata.normalization` again, so a
/// bin → onnx → bin round trip gives back the same graph.
func liftingInputNormalization(_ model: Model) -> Model {
    let g = model.graph
    guard model.metadata.normalization == nil, g.inputs.count == 1,
          let channels = g.inputs[0].sampleShape.first, g.inputs[0].sampleShape.count == 3 else { return model }
    let input = g.inputs[0].name
    guard let sub = soleConsumer(of: input, in: g), sub.op == .sub, sub.inputs.first == input,
          let mean = perChannelConstant(sub.inputs[1], channels: channels, in: g),
          let div = soleConsumer(of: sub.output, in: g), div.op == .div, div.inputs.first == sub.output,
          let std = perChannelConstant(div.inputs[1], channels: channels, in: g),
          std.allSatisfy({ $0 != 0 && $0.isFinite }), !g.outputs.contains(div.output) else { return model }
    var lifted = g
    lifted.nodes.removeAll { $0.name == sub.name || $0.name == div.name }
    for i in lifted.nodes.indices {
        lifted.nodes[i].inputs = lifted.nodes[i].inputs.map { $0 == div.output ? input : $0 }
    }
    for constant in [sub.inputs[1], div.inputs[1]] where !lifted.nodes.contains(where: { $0.inputs.contains(constant) }) {
        lifted.initializers[constant] = nil
    }
    var result = model
    result.graph = lifted
    result.metadata.normalization = Normalization(mean: mean, std: std)
    return result
}

/// The only node reading `value`, when exactly one does.
private func soleConsumer(of value: String, in g: Graph) -> Node? {
    let readers = g.consumers(of: value)
    return readers.count == 1 ? readers[0] : nil
}

/// The values of a `[C,1,1]` or `[1,C,1,1]` float initializer, else nil.
private func perChannelConstant(_ name: String, channels: Int, in g: Graph) -> [Float]? {
    guard let t = g.initializers[name], t.dtype == .float32,
          t.shape == [channels, 1, 1] || t.shape == [1, channels, 1, 1] else { return nil }
    return t.floats
}

/// Transfer learning's new classifier: the model's last Linear layer replaced
/// by a fresh one with `classes` outputs (weight He-initialized from `seed`,
/// bias zero), as in the transfer experiments of Vlaar & Leimkuhler,
/// "Multirate Training of Neural Networks", ICML 2022. The initializers keep
/// their names; a compressed encoding the old head had (codebook, buckets,
/// narrow precision) is dropped with it.
extension Model {
    /// - Parameters:
    ///   - classes: outputs of the new head (at least 1).
    ///   - classNames: the new classes' names ("0" to "classes-1" when nil).
    /// - Throws: a `ParameterError` when the model has no Linear layer with
    ///   initializer weights, or a layer after it does not take the new width.
    public func withNewHead(classes: Int, classNames: [String]? = nil, seed: UInt64) throws -> Model {
        precondition(classes >= 1 && (classNames == nil || classNames!.count == classes), "one name per class")
        let sorted = try graph.topologicallySorted()
        guard let head = sorted.nodes.last(where: { if case .linear = $0.op { true } else { false } }),
              let weight = graph.initializers[head.inputs[1]] else {
            throw ParameterError(pass: "new-head", problems: ["the model has no Linear layer with initializer weights to replace"])
        }
        var m = self
        var generator = SeededGenerator(seed: seed)
        let inFeatures = weight.shape[1]
        let replaced = [head.inputs[1]] + (head.inputs.count > 2 && !head.inputs[2].isEmpty ? [head.inputs[2]] : [])
        m.graph.initializers[head.inputs[1]] = generator.gaussianTensor([classes, inFeatures],
                                                                        std: (2 / Float(inFeatures)).squareRoot())
        if replaced.count > 1 { m.graph.initializers[replaced[1]] = .zeros([classes]) }
        do {
            _ = try m.graph.inferShapes(batch: 1)
        } catch {
            throw ParameterError(pass: "new-head", problems: ["a layer after '\(head.name)' does not take \(classes) classes: \(error)"])
        }
        m.metadata.storage.sharedTensors.removeAll { replaced.contains($0) }
        for name in replaced {
            m.metadata.storage.hashedTensors[name] = nil
            m.metadata.storage.precisions[name] = nil
        }
        m.metadata.classNames = classNames ?? (0..<classes).map(String.init)
        m.metadata.history.append(HistoryEntry(pass: "new-head", parameters: ["layer": head.name, "classes": String(classes)],
                                               seed: seed, metrics: ["params": Double(m.graph.parameterCount)]))
        return m
    }
}

extension LatencyBenchmark {
    /// Times one full training step of `model` (forward in training mode,
    /// softmax cross-entropy, backward, SGD with momentum 0.9 and weight decay
    /// 5e-4) on a seeded random batch held in memory, the way
    /// `scripts/torch_train_bench.py` times PyTorch, with the bytes the step works in (`trainingBytes`).
    public func measureTrainingStep(_ model: Model, batch: Int, threads: Int, seed: UInt64 = 0) throws -> LatencyMeasurement {
        let graph = try TrainingGraph(model: model, seed: seed, threads: threads)
        // Plans the step's buffers (checking the memory budget) before the batch is built.
        _ = try graph.stepBytes(batch: batch)
        var rng = SeededGenerator(seed: seed)
        let input = rng.uniformTensor([batch] + model.inputShape, in: 0...1)
        let classes = model.metadata.classNames.count > 0 ? model.metadata.classNames.count : 10
        let labels = (0..<batch).map { Int32($0 % classes) }
        let optimizer = SGD(momentum: 0.9, weightDecay: 5e-4)
        var measurement = try time(batch: batch, threads: threads) {
            graph.zeroGradients()
            let logits = try graph.forward(input, training: true)
            try graph.backward(Loss.softmaxCrossEntropy(logits: logits, labels: labels).gradient)
            optimizer.step(graph, learningRate: 1e-3)
        }
        // SGD keeps one velocity per parameter value.
        let velocities = graph.parameters.values.reduce(0) { $0 + $1.count } * MemoryLayout<Float>.size
        measurement.trainingBytes = try graph.stepBytes(batch: batch) + velocities
        return measurement
    }
}

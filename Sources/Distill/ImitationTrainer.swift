import Foundation
import Compress

/// Trains a student on feature imitation alone (no labels, no logits):
/// FitNets' first stage and each block of layerwise imitation.
///
/// Steps are numbered over the whole imitation phase and walk the training
/// split's mini-batches epoch after epoch (the same shuffling, seeds and
/// augmentation as ``TrainingRun``'s epochs), so a phase split between blocks
/// sees the data once per imitation epoch. Each call to ``train(_:imitation:only:trainable:steps:label:)``
/// starts a fresh optimizer of the settings' kind whose learning rate
/// follows the settings' schedule over that call's steps.
///
/// Conv and linear weights that are exactly zero stay zero when the settings
/// keep them (`keep-zeros`), and shared or hashed tensors stay tied to their
/// codebooks, quantized ones to their grids (as in the KD training after it).
/// Nothing is checkpointed: an interrupted phase reruns from its start.
final class ImitationTrainer {
    let data: LabeledImages
    let settings: TrainingSettings
    let progress: any Compress.ProgressReporting
    let cancellation: CancellationFlag
    /// Mini-batches of one epoch, kept while the steps are in it.
    private var batches: (epoch: Int, batches: MiniBatches)?

    init(data: LabeledImages, settings: TrainingSettings, progress: any Compress.ProgressReporting, cancellation: CancellationFlag) {
        self.data = data
        self.settings = settings
        self.progress = progress
        self.cancellation = cancellation
    }

    /// Steps per epoch (full batches of the training split).
    var stepsPerEpoch: Int { data.count / settings.batchSize }

    /// A training graph of `model` with the settings' storage ties (see the type's comment),
    /// whose values `kept` stay readable and seedable by name (the imitated student values).
    func graph(for model: Model, keeping kept: Set<String> = []) throws -> TrainingGraph {
        let graph = try TrainingGraph(model: model, seed: settings.seed, threads: settings.threads, keptValues: kept)
        let storage = model.metadata.storage
        if settings.keepsCodebooks { graph.tieHashedTensors(storage.hashedTensors) }
        if settings.keepsZeroWeights { graph.maskZeroWeights() }
        if settings.keepsCodebooks { graph.tieSharedTensors(storage.sharedTensors) }
        if settings.keepsPrecisions { graph.tieQuantizedTensors(storage.precisions) }
        return graph
    }

    /// Trains the student's parameters named in `trainable` (the others are
    /// frozen) and the imitation's adapters for the phase's `steps`, on the
    /// imitation's match `only` (all of them when nil).
    ///
    /// - Returns: the mean imitation loss over the first and over the last
    ///   tenth of the steps (at least one step each).
    func train(_ graph: TrainingGraph, imitation: FeatureImitation, only: Int? = nil, trainable: Set<String>,
               steps: Range<Int>, label: String) throws -> (first: Double, last: Double) {
        for (name, parameter) in graph.parameters { parameter.policy.isFrozen = !trainable.contains(name) }
        defer { for parameter in graph.parameters.values { parameter.policy.isFrozen = false } }
        let optimizer = settings.makeOptimizer()
        var segment = settings
        segment.epochs = 1
        let schedule = segment.makeSchedule(stepsPerEpoch: steps.count)
        let tenth = max(1, steps.count / 10)
        var losses: [Double] = []
        progress.begin(label, total: steps.count)
        defer { progress.end() }
        for step in steps {
            if cancellation.isCancelled { throw PassCancelled() }
            let batch = self.batch(step)
            let learningRate = schedule.learningRate(atStep: step - steps.lowerBound)
            graph.zeroGradients()
            _ = try graph.forward(batch.images, training: true)
            let (loss, seeds) = try imitation.step(student: graph, images: batch.images, learningRate: learningRate,
                                                   only: only)
            guard loss.isFinite else {
                throw ImitationDiverged(label: label, step: step - steps.lowerBound + 1, learningRate: learningRate)
            }
            try graph.backward(seeds: seeds)
            optimizer.step(graph, learningRate: learningRate)
            losses.append(Double(loss))
            progress.update(completed: losses.count, detail: String(format: "imitation loss %.5f", loss))
        }
        let mean = { (s: ArraySlice<Double>) in s.reduce(0, +) / Double(max(s.count, 1)) }
        return (mean(losses.prefix(tenth)), mean(losses.suffix(tenth)))
    }

    /// The mini-batch of phase step `step`.
    private func batch(_ step: Int) -> LabeledImages {
        let epoch = step / stepsPerEpoch
        if batches?.epoch != epoch {
            batches = (epoch, MiniBatches(data, batchSize: settings.batchSize, seed: settings.seed, epoch: epoch,
                                          dropLast: true, augmentation: settings.augmentation))
        }
        return batches!.batches.batch(step % stepsPerEpoch)
    }
}

/// The imitation loss stopped being a finite number.
struct ImitationDiverged: Error, CustomStringConvertible {
    var label: String
    var step: Int
    var learningRate: Float
    var description: String {
        "imitation diverged (loss is not finite) in \(label), step \(step); try a lower learning rate (last: \(learningRate))"
    }
}

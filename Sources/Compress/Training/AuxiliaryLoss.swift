/// An extra loss term of a training run, beside its cross-entropy or
/// distillation loss (distillation's hint layers): after every training
/// forward, a loss and its gradients with respect to values of the graph,
/// added to the batch's and backpropagated with it.
///
/// A term may learn parameters of its own (FitNets' adapters). They are not
/// part of the trained model, so the run checkpoints them beside it
/// (``stateTensors()`` after every epoch, ``loadState(_:)`` on resume): a
/// resumed run writes the same bytes as one never interrupted.
public protocol AuxiliaryLoss: AnyObject {
    /// The graph values the term reads and seeds: the run keeps them by name
    /// (`TrainingGraph`'s `keptValues`), so none is fused away.
    var valuesRead: Set<String> { get }
    /// The term on `batch`, after the training forward of `graph` on it, at
    /// the run's `step` (from 0 over the run); it may update its own parameters.
    func loss(graph: TrainingGraph, batch: LabeledImages, step: Int) throws -> (loss: Float, seeds: [String: Tensor])
    /// Everything the term learns, by name (empty when it learns nothing).
    func stateTensors() -> [String: Tensor]
    /// Restores what ``stateTensors()`` returned.
    ///
    /// - Throws: when `tensors` are not what this term saves (missing names or other shapes).
    func loadState(_ tensors: [String: Tensor]) throws
}

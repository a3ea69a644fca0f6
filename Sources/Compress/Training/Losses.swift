import Foundation

/// Training losses over batches. Each returns the mean loss over the batch and
/// its gradient with respect to the first argument, ready for `TrainingGraph.backward`.
/// Sums run in Double.
public enum Loss {
    /// Softmax cross-entropy against integer labels, with label smoothing
    /// (Szegedy et al., "Rethinking the Inception Architecture for Computer
    /// Vision", CVPR 2016): the target puts `1 - smoothing` on the label and
    /// spreads `smoothing` evenly over all `K` classes (PyTorch's convention).
    ///
    /// `loss = mean over n of -Σₖ qₖ log softmax(z)ₖ`, `dz = (softmax(z) - q) / N`.
    ///
    /// - Parameters:
    ///   - logits: `[N, K]`.
    ///   - labels: `N` class indices in `0..<K`.
    ///   - labelSmoothing: in `[0, 1)`.
    public static func softmaxCrossEntropy(logits: Tensor, labels: [Int32],
                                           labelSmoothing: Float = 0) -> (loss: Float, gradient: Tensor) {
        precondition(logits.rank == 2 && logits.shape[0] == labels.count,
                     "logits must be [N, K] with N = \(labels.count) labels, got \(logits.shape)")
        let (n, k) = (logits.shape[0], logits.shape[1])
        var gradient = logits.floats
        let (off, on) = (Double(labelSmoothing) / Double(k), 1 - Double(labelSmoothing) + Double(labelSmoothing) / Double(k))
        var total = 0.0
        for row in 0..<n {
            let label = Int(labels[row])
            precondition(label >= 0 && label < k, "label \(label) is outside 0..<\(k)")
            let logProbabilities = logSoftmax(gradient[(row * k)..<(row * k + k)])
            for j in 0..<k {
                let target = j == label ? on : off
                total -= target * logProbabilities[j]
                gradient[row * k + j] = Float((exp(logProbabilities[j]) - target) / Double(n))
            }
        }
        return (Float(total / Double(n)), Tensor(shape: logits.shape, floats: gradient))
    }

    /// Mean squared error between two equally shaped tensors (e.g. feature
    /// maps, for hint-based distillation: Romero et al., "FitNets", ICLR 2015):
    /// `loss = mean((a - b)²)`, gradient with respect to `a`: `2 (a - b) / count`.
    public static func meanSquaredError(_ a: Tensor, _ b: Tensor) -> (loss: Float, gradient: Tensor) {
        precondition(a.shape == b.shape, "shapes differ: \(a.shape) vs \(b.shape)")
        let (x, y) = (a.floats, b.floats)
        let count = Double(max(x.count, 1))
        var total = 0.0
        var gradient = [Float](repeating: 0, count: x.count)
        for i in x.indices {
            let d = Double(x[i]) - Double(y[i])
            total += d * d
            gradient[i] = Float(2 * d / count)
        }
        return (Float(total / count), Tensor(shape: a.shape, floats: gradient))
    }

    /// Knowledge-distillation loss (Hinton, Vinyals & Dean, "Distilling the
    /// Knowledge in a Neural Network", 2015): the KL divergence from the
    /// teacher's to the student's temperature-softened distributions,
    /// `p = softmax(teacher / T)`, `q = softmax(student / T)`,
    /// `loss = T² · mean over n of Σₖ pₖ (log pₖ - log qₖ)`.
    ///
    /// The `T²` factor is Hinton et al.'s convention: softening divides the
    /// gradients by `T²`, so scaling the loss back keeps their magnitude about
    /// the same for any temperature when mixed with a hard-label loss. The
    /// gradient with respect to the student logits is then `T · (q - p) / N`.
    ///
    /// - Parameters:
    ///   - student: `[N, K]` logits, the tensor the gradient is for.
    ///   - teacher: `[N, K]` logits.
    ///   - temperature: `T > 0`.
    public static func distillationKL(student: Tensor, teacher: Tensor,
                                      temperature: Float) -> (loss: Float, gradient: Tensor) {
        precondition(student.rank == 2 && student.shape == teacher.shape,
                     "student and teacher must both be [N, K], got \(student.shape) and \(teacher.shape)")
        precondition(temperature > 0, "temperature must be positive, got \(temperature)")
        let (n, k) = (student.shape[0], student.shape[1])
        let t = Double(temperature)
        let (s, u) = (student.floats.map { Double($0) / t }, teacher.floats.map { Double($0) / t })
        var gradient = [Float](repeating: 0, count: n * k)
        var total = 0.0
        for row in 0..<n {
            let range = (row * k)..<(row * k + k)
            let (logQ, logP) = (logSoftmax(s[range]), logSoftmax(u[range]))
            for j in 0..<k {
                let p = exp(logP[j])
                total += p * (logP[j] - logQ[j])
                gradient[row * k + j] = Float(t * (exp(logQ[j]) - p) / Double(n))
            }
        }
        return (Float(t * t * total / Double(n)), Tensor(shape: student.shape, floats: gradient))
    }

    /// Hinton et al.'s knowledge-distillation objective (2015): the
    /// distillation term ``distillationKL(student:teacher:temperature:)``
    /// (`T²`-scaled) mixed with the cross-entropy against the labels,
    /// `loss = α · T² · KL(p ‖ q) + (1 - α) · CE(student, labels)`, and the
    /// same mix of their gradients with respect to the student logits.
    ///
    /// - Parameters:
    ///   - alpha: weight of the distillation term, in `[0, 1]`; 0 is plain
    ///     cross-entropy (with `labelSmoothing`), 1 ignores the labels.
    public static func knowledgeDistillation(student: Tensor, teacher: Tensor, labels: [Int32], temperature: Float,
                                             alpha: Float, labelSmoothing: Float = 0) -> (loss: Float, gradient: Tensor) {
        precondition((0...1).contains(alpha), "alpha must be in [0, 1], got \(alpha)")
        let (hard, hardGradient) = softmaxCrossEntropy(logits: student, labels: labels, labelSmoothing: labelSmoothing)
        let (soft, softGradient) = distillationKL(student: student, teacher: teacher, temperature: temperature)
        let (a, b) = (Double(alpha), 1 - Double(alpha))
        let gradient = zip(softGradient.floats, hardGradient.floats).map { Float(a * Double($0) + b * Double($1)) }
        return (Float(a * Double(soft) + b * Double(hard)), Tensor(shape: student.shape, floats: gradient))
    }

    /// `log softmax` of one row, stable (max subtracted).
    private static func logSoftmax<C: Collection>(_ row: C) -> [Double] where C.Element: BinaryFloatingPoint {
        let values = row.map { Double($0) }
        let peak = values.max() ?? 0
        let logTotal = log(values.reduce(0) { $0 + exp($1 - peak) }) + peak
        return values.map { $0 - logTotal }
    }
}

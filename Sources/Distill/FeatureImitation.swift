import Compress

/// One imitated feature: a value of the student graph that learns to
/// reproduce a value of the teacher graph (a FitNets hint, or one block of
/// layerwise imitation), with the shapes and pooling that make them comparable.
public struct FeatureMatch: Sendable, Equatable {
    /// The student's value (its guided layer's output).
    public var student: String
    /// The teacher's value (its hint layer's output).
    public var teacher: String
    /// One sample's shape of each: `[C, H, W]` for feature maps, `[F]` for vectors.
    public var studentShape: [Int]
    public var teacherShape: [Int]
    /// The average-pooling window that brings the student's map to the
    /// teacher's size (when the student's is the larger), or nil.
    public var studentPool: Size2?
    /// The same for the teacher's map, when it is the larger.
    public var teacherPool: Size2?

    /// Channels (or features) of the compared values: the adapter maps the student's to the teacher's.
    var studentChannels: Int { studentShape[0] }
    var teacherChannels: Int { teacherShape[0] }

    /// Pairs `student` with `teacher`, given each graph's value shapes for a
    /// batch of one (``Graph/inferShapes(batch:)``).
    ///
    /// Feature maps must have the same spatial size or, when `pools`, sizes
    /// whose ratio is an integer in each dimension (the larger map is
    /// average-pooled to the smaller); vectors pair with vectors.
    ///
    /// - Returns: the match, or the one problem that prevents it, worded for
    ///   `label` (e.g. "hint 'relu1=relu2'").
    static func make(student: String, teacher: String, studentShapes: [String: [Int]],
                     teacherShapes: [String: [Int]], pools: Bool, label: String) -> Result<FeatureMatch, MatchProblem> {
        guard let s = studentShapes[student]?.dropFirst(), let t = teacherShapes[teacher]?.dropFirst() else {
            return .failure(MatchProblem("\(label): a value is missing"))
        }
        let (sShape, tShape) = (Array(s), Array(t))
        var match = FeatureMatch(student: student, teacher: teacher, studentShape: sShape, teacherShape: tShape)
        switch (sShape.count, tShape.count) {
        case (1, 1): return .success(match)
        case (3, 3): break
        default:
            return .failure(MatchProblem("\(label): the student's value is \(sShape) and the teacher's \(tShape); "
                                         + "feature maps [C, H, W] pair with feature maps and vectors [F] with vectors"))
        }
        let (sh, sw, th, tw) = (sShape[1], sShape[2], tShape[1], tShape[2])
        if (sh, sw) == (th, tw) { return .success(match) }
        let sizes = "the student's map is \(sh)x\(sw) and the teacher's \(th)x\(tw)"
        guard pools else {
            return .failure(MatchProblem("\(label): \(sizes); spatial sizes must match (hint-pool average-pools the larger map to the smaller when their ratio is an integer)"))
        }
        if sh >= th && sw >= tw && sh % th == 0 && sw % tw == 0 {
            match.studentPool = Size2(sh / th, sw / tw)
        } else if th >= sh && tw >= sw && th % sh == 0 && tw % sw == 0 {
            match.teacherPool = Size2(th / sh, tw / sw)
        } else {
            return .failure(MatchProblem("\(label): \(sizes); pooling needs one map's height and width to be integer multiples of the other's"))
        }
        return .success(match)
    }

    /// The teacher value after its pooling: the name the imitation target has in the teacher's extended graph.
    var teacherTarget: String {
        teacherPool.map { "\(teacher)#pool\($0.h)x\($0.w)" } ?? teacher
    }
}

/// Why two values cannot be matched, in one sentence.
struct MatchProblem: Error, Equatable {
    var message: String
    init(_ message: String) { self.message = message }
}

/// The learned map from a student value to its teacher value's shape
/// (FitNets' regressor): average pooling when the student's map is the larger,
/// then a 1x1 convolution (feature maps) or a linear layer (vectors) when the
/// channel counts differ. Nil when neither is needed: the student value is compared as it is.
///
/// The adapter starts at zero (weight and bias), so an adapted value starts
/// at 0 and its relative error (``relativeSquaredError(_:_:weight:)``) at
/// exactly 1: no random projection pushes the student before the adapter has
/// learned anything (the gradient through a zero adapter is zero; the
/// adapter's own is not, so it moves first).
///
/// It is a model of its own, trained beside the student: its input is the
/// student value, and the gradient with respect to that input is what the
/// student backpropagates. It is never part of the student, so the output
/// model has no trace of it.
func adapterModel(for match: FeatureMatch) -> Model? {
    let input = "feature"
    var nodes: [Node] = []
    var initializers: [String: Tensor] = [:]
    var current = input
    if let pool = match.studentPool {
        nodes.append(Node(name: "pool", op: .avgPool(Pool2d(kernel: pool), countIncludePad: false), inputs: [current], output: "pool"))
        current = "pool"
    }
    let (cs, ct) = (match.studentChannels, match.teacherChannels)
    if cs != ct {
        let isMap = match.studentShape.count == 3
        initializers["adapter.weight"] = .zeros(isMap ? [ct, cs, 1, 1] : [ct, cs])
        initializers["adapter.bias"] = .zeros([ct])
        nodes.append(Node(name: "adapter", op: isMap ? .conv2d(Conv2d()) : .linear,
                          inputs: [current, "adapter.weight", "adapter.bias"], output: "adapter"))
        current = "adapter"
    }
    guard !nodes.isEmpty else { return nil }
    return Model(graph: Graph(inputs: [GraphInput(name: input, sampleShape: match.studentShape)], outputs: [current],
                              nodes: nodes, initializers: initializers))
}

/// The teacher's values that `matches` imitate, computed by the inference
/// runtime (``Session``: batched, no gradient) on the student's batches: the
/// teacher graph with those values (average-pooled where the teacher's map is
/// the larger) as its outputs.
final class TeacherFeatures {
    private let session: Session
    private let inputName: String

    init(teacher: Model, matches: [FeatureMatch], threads: Int) throws {
        var graph = teacher.graph
        var outputs: [String] = []
        for match in matches where !outputs.contains(match.teacherTarget) {
            if let pool = match.teacherPool {
                graph.nodes.append(Node(name: match.teacherTarget, op: .avgPool(Pool2d(kernel: pool), countIncludePad: false),
                                        inputs: [match.teacher], output: match.teacherTarget))
            }
            outputs.append(match.teacherTarget)
        }
        graph.outputs = outputs
        inputName = teacher.graph.inputs[0].name
        session = try Session(model: Model(graph: graph, metadata: teacher.metadata), threads: threads)
    }

    /// The imitated values on `images` (`[N, C, H, W]` pixels in [0, 1]), by target name.
    func values(on images: Tensor) throws -> [String: Tensor] {
        try session.run(inputs: [inputName: images], normalizing: true)
    }
}

/// Feature imitation between a student being trained and a fixed teacher:
/// FitNets' hint loss (Romero et al., "FitNets: Hints for Thin Deep Nets",
/// ICLR 2015) and the block outputs of layerwise imitation.
///
/// For each match the loss is the squared error between the adapted student
/// value `r(u)` and the teacher value `v` relative to the teacher value's
/// mean square, over every element of the batch: `weight · mean((r(u) -
/// v)²) / mean(v²)` (``relativeSquaredError(_:_:weight:)``), summed over the matches. Each
/// step trains the adapters (with their own optimizer of the same kind and
/// settings as the student's) and returns the gradient with respect to each
/// student value, for `TrainingGraph.backward(seeds:)`.
final class FeatureImitation {
    let matches: [FeatureMatch]
    /// Scales the loss (1 when it is the only loss; the hint weight beside KD).
    var weight: Float
    private let teacher: TeacherFeatures
    /// Per match, the adapter being trained, or nil where none is needed.
    private let adapters: [TrainingGraph?]
    /// One optimizer per adapter (their parameters share names).
    private let optimizers: [any StatefulOptimizer]

    /// - Parameter settings: the adapters' optimizer and the threads.
    init(matches: [FeatureMatch], teacher: Model, weight: Float, settings: TrainingSettings) throws {
        self.matches = matches
        self.weight = weight
        self.teacher = try TeacherFeatures(teacher: teacher, matches: matches, threads: settings.threads)
        adapters = try matches.map { match in
            try adapterModel(for: match).map { try TrainingGraph(model: $0, threads: settings.threads, computesInputGradient: true) }
        }
        optimizers = matches.map { _ in settings.makeOptimizer() }
    }

    /// The adapters' parameter count (none of it reaches the output model).
    var adapterParameterCount: Int {
        adapters.reduce(0) { $0 + ($1?.parameters.values.reduce(0) { $0 + $1.count } ?? 0) }
    }

    /// The adapters' parameters (`adapter<k>/<name>`) and their optimizers'
    /// state (`adapter<k>/optimizer/<slot>`), `k` the match's index.
    func stateTensors() -> [String: Tensor] {
        var state: [String: Tensor] = [:]
        for (k, adapter) in adapters.enumerated() {
            guard let adapter else { continue }
            for (name, parameter) in adapter.parameters { state["adapter\(k)/\(name)"] = parameter.tensor }
            for (name, slot) in optimizers[k].stateTensors() { state["adapter\(k)/optimizer/\(name)"] = slot }
        }
        return state
    }

    /// Restores what ``stateTensors()`` returned.
    ///
    /// - Throws: `CheckpointStateMismatch` when an adapter's parameter is missing or has another shape.
    func loadState(_ state: [String: Tensor]) throws {
        for (k, adapter) in adapters.enumerated() {
            guard let adapter else { continue }
            for (name, parameter) in adapter.parameters {
                guard let saved = state["adapter\(k)/\(name)"], saved.shape == parameter.shape else {
                    throw CheckpointStateMismatch(name: "adapter\(k)/\(name)", expected: parameter.shape,
                                                  found: state["adapter\(k)/\(name)"]?.shape)
                }
                parameter.load(saved)
            }
            let prefix = "adapter\(k)/optimizer/"
            var slots: [String: Tensor] = [:]
            for (name, tensor) in state where name.hasPrefix(prefix) { slots[String(name.dropFirst(prefix.count))] = tensor }
            try optimizers[k].loadState(slots)
        }
    }

    /// After a training forward of `student` on `images`: the imitation loss,
    /// and its gradient with respect to each matched student value. When
    /// `learningRate` is given the adapters take one optimizer step.
    ///
    /// - Parameter only: the one match to use (a block of layerwise
    ///   imitation); all of them when nil.
    func step(student: TrainingGraph, images: Tensor, learningRate: Float?,
              only: Int? = nil) throws -> (loss: Float, seeds: [String: Tensor]) {
        let targets = try teacher.values(on: images)
        var total: Float = 0
        var seeds: [String: Tensor] = [:]
        for (k, (match, adapter)) in zip(matches, adapters).enumerated() where only == nil || only == k {
            guard let value = student.value(named: match.student), let target = targets[match.teacherTarget] else {
                throw TrainingError.noGradient(value: match.student)
            }
            let adapted = try adapter?.forward(value, training: true) ?? value
            let (loss, gradient) = relativeSquaredError(adapted, target, weight: weight)
            total += loss
            var seed = gradient
            if let adapter {
                adapter.zeroGradients()
                try adapter.backward(gradient)
                seed = adapter.inputGradient!
                if let learningRate { optimizers[k].step(adapter, learningRate: learningRate) }
            }
            seeds[match.student] = seeds[match.student].map { Tensor(shape: $0.shape, floats: zip($0.floats, seed.floats).map(+)) } ?? seed
        }
        return (total, seeds)
    }

    /// Each match's relative squared error (unweighted) between the adapted
    /// student value and the teacher's, for `student` run in eval mode on
    /// `images`: how well the student imitates, without training anything.
    func errors(of student: Model, on images: LabeledImages, threads: Int) throws -> [Double] {
        let graph = try TrainingGraph(model: student, threads: threads, keptValues: Set(matches.map(\.student)))
        var sums = [Double](repeating: 0, count: matches.count)
        var start = 0
        while start < images.count {
            let batch = images.batch(start..<min(start + 256, images.count))
            _ = try graph.forward(batch.images, training: false)
            let targets = try teacher.values(on: batch.images)
            for (k, (match, adapter)) in zip(matches, adapters).enumerated() {
                let value = graph.value(named: match.student)!
                let adapted = try adapter?.forward(value, training: false) ?? value
                sums[k] += Double(relativeSquaredError(adapted, targets[match.teacherTarget]!, weight: 1).loss) * Double(batch.count)
            }
            start += batch.count
        }
        return sums.map { $0 / Double(max(images.count, 1)) }
    }
}

/// A saved adapter parameter that is missing or has another shape than the adapter's.
struct CheckpointStateMismatch: Error, CustomStringConvertible {
    var name: String
    var expected: [Int]
    var found: [Int]?
    var description: String {
        found.map { "\(name) is \($0), the adapter's is \(expected)" } ?? "\(name) is missing"
    }
}

/// `weight · mean((a - b)²) / (mean(b²) + 1e-8)` over every element of the
/// batch, and its gradient with respect to `a`: the squared error relative
/// to the target's mean square, so the loss starts near 1 (a zero student
/// value scores exactly 1) whatever the scale of the teacher's features, and
/// one learning rate and one hint weight fit every layer.
func relativeSquaredError(_ a: Tensor, _ b: Tensor, weight: Float) -> (loss: Float, gradient: Tensor) {
    precondition(a.shape == b.shape, "compared values must have one shape: \(a.shape) vs \(b.shape)")
    let (x, y) = (a.floats, b.floats)
    let count = Double(max(x.count, 1))
    let meanSquare = y.reduce(0) { $0 + Double($1) * Double($1) } / count
    let scale = Float(Double(weight) / (count * (meanSquare + 1e-8)))
    var loss: Double = 0
    var gradient = [Float](repeating: 0, count: x.count)
    for i in 0..<x.count {
        let d = x[i] - y[i]
        loss += Double(d) * Double(d)
        gradient[i] = 2 * scale * d
    }
    return (Float(loss) * scale, Tensor(shape: a.shape, floats: gradient))
}

import Foundation

/// Where the teacher of a knowledge-distillation run comes from: the
/// `teacher` training parameter (`--teacher`, `--finetune-teacher`,
/// `teacher:` in pipelines).
public enum TeacherSource: Sendable, Equatable, CustomStringConvertible {
    /// `input`: the model the pass whose fine-tuning it is started from (for
    /// a pipeline's `finetune` or `distill` step, the pipeline's input model;
    /// for the `finetune` command, its input model).
    case input
    /// A model file, native or ONNX.
    case file(String)

    /// The parameter's text: `input`, else a path.
    public init(_ text: String) { self = text == "input" ? .input : .file(text) }

    public var description: String {
        switch self {
        case .input: "input"
        case .file(let path): path
        }
    }

    /// The teacher model: `input` is `inputModel`, a file is read.
    ///
    /// - Throws: `ParameterError` naming `pass` when the file does not exist
    ///   or cannot be read, or when `input` is asked for and there is none.
    public func load(input inputModel: Model?, pass: String) throws -> Model {
        switch self {
        case .input:
            guard let inputModel else {
                throw ParameterError(pass: pass, problems: ["teacher 'input' names the model a pass or pipeline started from, and there is none here; give a model file"])
            }
            return inputModel
        case .file(let path):
            guard FileManager.default.fileExists(atPath: path) else {
                throw ParameterError(pass: pass, problems: ["teacher model \(path) does not exist"])
            }
            do { return try ModelLoader.read(path: path) } catch {
                throw ParameterError(pass: pass, problems: ["teacher model \(path) cannot be read: \(error)"])
            }
        }
    }
}

/// The teacher of a knowledge-distillation run (Hinton, Vinyals & Dean,
/// "Distilling the Knowledge in a Neural Network", 2015): its logits for a
/// training batch, computed by the inference runtime (``Session``: batched,
/// no gradient) on the same augmented images the student sees, or, when
/// cached, once on the un-augmented training split.
final class DistillationTeacher {
    private let session: Session
    /// Logits `[N, K]` on the whole training split, row per image index, when cached.
    private let cached: [Float]?
    private let classes: Int

    /// - Throws: `ParameterError` naming `pass` when teacher and student take
    ///   different inputs or have different class counts.
    init(teacher: Model, student: Model, train: LabeledImages, caches: Bool, threads: Int, pass: String) throws {
        let problems = Self.problems(teacher: teacher, student: student)
        guard problems.isEmpty else { throw ParameterError(pass: pass, problems: problems) }
        session = try Session(model: teacher, threads: threads)
        classes = try Self.classCount(teacher) ?? 0
        cached = caches ? try Self.logits(of: session, on: train) : nil
    }

    /// Why `teacher` cannot teach `student` (empty when it can): both must
    /// take the same input shape and give `[N, K]` logits with the same `K`.
    static func problems(teacher: Model, student: Model) -> [String] {
        guard teacher.inputShape == student.inputShape else {
            return ["the teacher takes inputs \(teacher.inputShape) but the student \(student.inputShape)"]
        }
        guard let t = try? classCount(teacher), let s = try? classCount(student) else { return ["teacher and student must both output [N, classes] logits"] }
        return t == s ? [] : ["the teacher has \(t) classes but the student \(s)"]
    }

    /// `K` of a model whose first output is `[N, K]`; nil for other outputs.
    private static func classCount(_ model: Model) throws -> Int? {
        guard let output = model.graph.outputs.first, let shape = try model.graph.inferShapes(batch: 1)[output],
              shape.count == 2 else { return nil }
        return shape[1]
    }

    /// The teacher's logits for `batch`, the images at `indices` of the
    /// training split (after augmentation, when there is any).
    func logits(for batch: LabeledImages, indices: ArraySlice<Int>) throws -> Tensor {
        guard let cached else { return try session.run(batch.images) }
        var rows = [Float]()
        rows.reserveCapacity(indices.count * classes)
        for i in indices { rows += cached[(i * classes)..<((i + 1) * classes)] }
        return Tensor(shape: [indices.count, classes], floats: rows)
    }

    /// The session's logits on every image of `data`, in order, 256 at a time.
    private static func logits(of session: Session, on data: LabeledImages) throws -> [Float] {
        var all = [Float]()
        var start = 0
        while start < data.count {
            let end = min(start + 256, data.count)
            all += try session.run(data.batch(start..<end).images).floats
            start = end
        }
        return all
    }
}

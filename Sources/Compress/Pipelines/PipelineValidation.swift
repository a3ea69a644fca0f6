import Foundation

/// A validated pipeline, ready to run: every step's parameters checked and
/// turned into an action, the input model loaded, all paths known.
public struct PipelinePlan: Sendable {
    /// The pipeline as validated (overrides applied).
    public var pipeline: Pipeline
    /// The input model file.
    public var modelPath: String
    /// The input model.
    public var model: Model
    /// The final model file.
    public var output: String
    /// The steps, in order.
    public var steps: [PipelinePlanStep]
}

/// One validated step.
public struct PipelinePlanStep: Sendable {
    /// 1-based position in the pipeline.
    public var number: Int
    /// The pass name, `finetune` or `eval`.
    public var name: String
    /// What the step does.
    public var action: StepAction
    /// Every parameter's value as text, defaults included (for logs and the resume manifest).
    public var parameters: [String: String]

    /// "02-finetune": the step's label and file stem.
    public var label: String { String(format: "%02d-%@", number, name) }
}

/// What a step does.
public enum StepAction: Sendable {
    /// Runs a registered pass.
    case pass(any Pass, PassParameters)
    /// Fine-tunes with these settings (seed and threads are set per step when it runs).
    case finetune(TrainingSettings)
    /// Measures test accuracy on the first `limit` images (all when nil).
    case eval(limit: Int?)

    /// Whether the step produces a new model (eval does not).
    public var changesModel: Bool {
        if case .eval = self { return false }
        return true
    }
}

extension Pipeline {
    /// The parameters of an `eval` step.
    public static let evalParameters = [
        ParameterSpec("limit", .int, default: .int(0), help: "Evaluate only the first N test images (0: all)."),
    ]

    /// Checks everything that can be checked before running: input model,
    /// output path, data directory, every step's name and parameters. All
    /// problems are reported in one error, with step numbers; nothing is run.
    public func validate(registry: PassRegistry, file: String? = nil) throws(PipelineError) -> PipelinePlan {
        try validate(registry: registry, file: file, earlierProblems: [])
    }

    /// ``validate(registry:file:)``, reporting `earlierProblems` (from parsing) first.
    func validate(registry: PassRegistry, file: String?, earlierProblems: [String]) throws(PipelineError) -> PipelinePlan {
        var problems = earlierProblems
        let model = checkModel(&problems)
        checkOutput(&problems)
        checkData(&problems)
        if report?.validation == true && validationCount < 1 {
            problems.append("report.validation needs a validation split: 'validation-count' must be at least 1")
        }
        if steps.isEmpty && !problems.contains(where: { $0.contains("'steps'") }) {
            problems.append("no steps: a pipeline needs at least one")
        }
        let planned = steps.enumerated().compactMap { i, step in
            Self.plan(step, number: i + 1, registry: registry, epochCap: maxEpochs, problems: &problems)
        }
        if let model { problems += teacherProblems(student: model) }
        guard problems.isEmpty, let model, let modelPath = self.model, let output else {
            throw PipelineError(file: file, problems: problems)
        }
        return PipelinePlan(pipeline: self, modelPath: modelPath, model: model, output: output, steps: planned)
    }

    /// Whether the run reads the dataset: always, since the report that ends
    /// every run measures test accuracy.
    var needsData: Bool { true }

    private func checkModel(_ problems: inout [String]) -> Model? {
        guard let path = model else {
            problems.append("no input model: set 'model:' in the file or pass --model")
            return nil
        }
        guard FileManager.default.fileExists(atPath: path) else {
            problems.append("input model \(path) does not exist")
            return nil
        }
        let model: Model
        do { model = try ModelLoader.read(path: path) } catch {
            problems.append("input model \(path) cannot be read: \(error)")
            return nil
        }
        do { try model.checkInferenceMemory() } catch {
            problems.append("input model \(path): \(error)")
            return nil
        }
        return model
    }

    private func checkOutput(_ problems: inout [String]) {
        guard let output else {
            problems.append("no output: set 'output:' in the file or pass -o")
            return
        }
        var isDirectory: ObjCBool = false
        if FileManager.default.fileExists(atPath: output, isDirectory: &isDirectory), isDirectory.boolValue {
            problems.append("output \(output) is a directory")
        }
    }

    private func checkData(_ problems: inout [String]) {
        guard data != nil || needsData else { return }
        let directory = data ?? DatasetLoader.defaultDirectory
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: directory, isDirectory: &isDirectory), isDirectory.boolValue else {
            let hint = data == nil ? " (install Fashion-MNIST with `apt-get install \(DatasetLoader.defaultPackage)` or set 'data:')" : ""
            problems.append("data directory \(directory) does not exist\(hint)")
            return
        }
    }

    /// Why a step's teacher file cannot teach the input model (passes keep
    /// the input shape and the class count, so neither can it teach any step's
    /// model); missing files are reported with the step's parameters.
    private func teacherProblems(student: Model) -> [String] {
        steps.enumerated().flatMap { i, step in
            step.parameters.filter { PipelineStep.pathParameters.contains($0.key) && $0.value != "input" }
                .sorted { $0.key < $1.key }
                .compactMap { _, path in (try? ModelLoader.read(path: path)).map { (path, $0) } }
                .flatMap { path, teacher in
                    DistillationTeacher.problems(teacher: teacher, student: student).map {
                        "step \(i + 1) (\(step.name)\(step.line.map { ", line \($0)" } ?? "")): teacher \(path): \($0)"
                    }
                }
        }
    }

    /// The planned step, or nil with its problems appended; with `epochCap`,
    /// the epochs a pass step leaves at a larger default are capped.
    private static func plan(_ step: PipelineStep, number: Int, registry: PassRegistry, epochCap: Int?,
                             problems: inout [String]) -> PipelinePlanStep? {
        let place = "step \(number) (\(step.name)\(step.line.map { ", line \($0)" } ?? ""))"
        do {
            let (action, parameters) = try action(for: step, registry: registry, epochCap: epochCap)
            return PipelinePlanStep(number: number, name: step.name, action: action, parameters: parameters)
        } catch let error as ParameterError {
            problems += error.problems.map { "\(place): \($0)" }
        } catch let error as UnknownStep {
            problems.append("step \(number)\(step.line.map { " (line \($0))" } ?? ""): \(error.description)")
        } catch {
            problems.append("\(place): \(error)")
        }
        return nil
    }

    private static func action(for step: PipelineStep, registry: PassRegistry,
                               epochCap: Int?) throws -> (StepAction, [String: String]) {
        switch step.name {
        case PipelineStep.finetune:
            let settings = try TrainingSettings(validating: step.parameters, defaults: .fineTuneDefaults, name: step.name)
            let specs = TrainingSettings.parameterSpecs(defaults: .fineTuneDefaults)
            let parameters = try PassParameters(validating: step.parameters, against: specs, pass: step.name)
            return (.finetune(settings), parameters.descriptions)
        case PipelineStep.eval:
            let parameters = try PassParameters(validating: step.parameters, against: evalParameters, pass: step.name)
            let limit = parameters.int("limit")
            guard limit >= 0 else { throw ParameterError(pass: step.name, problems: ["parameter 'limit' must be >= 0, got \(limit)"]) }
            return (.eval(limit: limit == 0 ? nil : limit), parameters.descriptions)
        default:
            guard let type = registry.pass(named: step.name) else {
                throw UnknownStep(name: step.name, known: [PipelineStep.eval, PipelineStep.finetune] + registry.names)
            }
            let given = epochCap.map { step.cappingDefaultEpochs(of: type.parameters, at: $0).parameters } ?? step.parameters
            let parameters = try PassParameters(validating: given, against: type.parameters, pass: step.name)
            return (.pass(try type.init(parameters: parameters), parameters), parameters.descriptions)
        }
    }
}

/// A step names neither a registered pass nor `finetune` or `eval`.
struct UnknownStep: Error, CustomStringConvertible {
    var name: String
    var known: [String]
    var description: String { "unknown step '\(name)' (known: \(known.sorted().joined(separator: ", ")))" }
}

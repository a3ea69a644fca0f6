import ArgumentParser
import Compress

/// `--classes 0-4`: the one declaration of a class subset (`eval`, and
/// through `TransferOptions` `train` and `finetune`).
struct ClassesOption: ParsableArguments {
    @Option(name: .long, help: ArgumentHelp(
        "Use only these classes, relabelled 0..n-1 in the order given: labels and ranges, e.g. 0-4 or 1,3,5-7.",
        valueName: "classes"))
    var classes: String?

    func validate() throws {
        if let classes { _ = try subset(classes) }
    }

    /// The parsed subset, nil when not given.
    var subset: ClassSubset? {
        get throws { try classes.map(subset) }
    }

    private func subset(_ text: String) throws -> ClassSubset {
        do { return try ClassSubset(parsing: text, parameter: "--classes") } catch {
            throw ValidationError(error.problems.joined(separator: "; "))
        }
    }

    /// `splits` restricted to the subset (unchanged without one), checked
    /// against `model`'s outputs: it needs at least as many as classes kept.
    func apply(to splits: DatasetSplits, model: Model) throws -> DatasetSplits {
        guard let subset = try subset else { return splits }
        let restricted: DatasetSplits
        do { restricted = try subset.apply(to: splits) } catch { throw CLIError("--classes: " + error.problems.joined(separator: "; ")) }
        let outputs = try model.graph.inferShapes(batch: 1)[model.graph.outputs[0]]?.last ?? 0
        guard outputs >= subset.count else {
            throw CLIError("--classes keeps \(subset.count) classes but the model has \(outputs) outputs; give it a new head with --new-head")
        }
        return restricted
    }
}

/// Transfer learning for `train` and `finetune`: a class subset and a fresh head for it.
struct TransferOptions: ParsableArguments {
    @OptionGroup var classes: ClassesOption

    @Flag(name: .long, help: "Replace the last Linear layer with a fresh one (seeded by --seed) for the classes of --classes.")
    var newHead = false

    func validate() throws {
        if newHead && classes.classes == nil { throw ValidationError("--new-head needs --classes (the new head's classes)") }
    }

    /// What the model history records of these options.
    var historyParameters: [String: String] {
        var p: [String: String] = [:]
        if let c = classes.classes { p["classes"] = c }
        if newHead { p["new-head"] = "true" }
        return p
    }

    /// The model (with its new head, when asked) and the data restricted to the classes.
    func apply(model: Model, splits: DatasetSplits, seed: UInt64) throws -> (Model, DatasetSplits) {
        guard let subset = try classes.subset else { return (model, splits) }
        var model = model
        if newHead {
            let names = subset.classes.allSatisfy { $0 < splits.classNames.count } ? subset.classes.map { splits.classNames[$0] } : nil
            model = try model.withNewHead(classes: subset.count, classNames: names, seed: seed)
        }
        return (model, try classes.apply(to: splits, model: model))
    }
}

import Compress

extension CalibrationImages {
    /// The one declaration of `calibration-images`, the number of validation
    /// images a data-driven pass looks at (`prune`'s criteria, `quantize`'s
    /// activation ranges).
    static func parameterSpec(help: String) -> ParameterSpec {
        ParameterSpec("calibration-images", .int, default: .int(512), help: help)
    }

    /// The first `count` validation images, with labels, for `model`; an
    /// error for pass `pass` when there are none (`purpose` says what needs
    /// them) or they do not fit the model's input.
    static func firstValidation(_ count: Int, for model: Model, context: PassContext, pass: String,
                                purpose: String) throws -> CalibrationImages {
        let validation = try context.data.splits().validation
        guard validation.count > 0 else { throw ParameterError(pass: pass, problems: ["\(purpose) needs validation images"]) }
        if let problem = DatasetSplits.inputShapeProblem(data: validation.sampleShape, model: model.inputShape) {
            throw ParameterError(pass: pass, problems: [problem])
        }
        return CalibrationImages(validation.batch(0..<min(count, validation.count)))
    }
}

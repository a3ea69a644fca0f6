import Compress

extension CalibrationImages {
    /// The one declaration of `calibration-images`, the number of validation
    /// images a data-driven pass looks at (`prune`'s criteria, `quantize`'s
    /// activation ranges).
    static func parameterSpec(help: String) -> ParameterSpec {
        ParameterSpec("calibration-images", .int, default: .int(512), help: help)
    }

    /// The first `count` validation images, with labels; an error for pass
    /// `pass` when there are none (`purpose` says what needs them).
    static func firstValidation(_ count: Int, context: PassContext, pass: String, purpose: String) throws -> CalibrationImages {
        let validation = try context.data.splits().validation
        guard validation.count > 0 else { throw ParameterError(pass: pass, problems: ["\(purpose) needs validation images"]) }
        return CalibrationImages(validation.batch(0..<min(count, validation.count)))
    }
}

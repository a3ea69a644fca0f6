import ArgumentParser
import Compress
import Foundation

struct PredictCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "predict",
        abstract: "Run an input array (.npy) through a model and write its output (.npy).",
        discussion: """
        The input is float32 pixels in [0,1] (or uint8 0-255, scaled by 1/255), shaped \
        [N, C, H, W] or [C, H, W] for one image; the model applies its own normalization. \
        The output is the model's first output (logits), [N, classes].
        """)

    @Argument(help: ArgumentHelp("Model file.", valueName: "model"))
    var model: String

    @Argument(help: ArgumentHelp("Input array (.npy).", valueName: "input"))
    var input: String

    @Option(name: .shortAndLong, help: ArgumentHelp("Output array (.npy).", valueName: "file"))
    var output: String

    @Flag(name: .long, help: "Write softmax probabilities instead of logits.")
    var probabilities = false

    @Option(name: .long, help: "Threads for the runtime.")
    var threads = 1

    @OptionGroup var outputOptions: OutputOptions

    func run() throws {
        let m = try loadModel(model)
        var x = try NPY.read(path: input)
        if case .uint8(let bytes) = x.storage { x = Tensor(shape: x.shape, floats: bytes.map { Float($0) / 255 }) }
        x = x.asFloat32()
        if x.shape == m.inputShape { x = try x.reshaped([1] + m.inputShape) }
        guard Array(x.shape.dropFirst()) == m.inputShape else {
            throw CLIError("input \(input) has shape \(x.shape), but the model takes [N, \(m.inputShape.map(String.init).joined(separator: ", "))]")
        }
        var y = try Session(model: m, threads: threads).run(x)
        if probabilities { y = softmaxRows(y) }
        try writeFileAtomically(NPY.encode(y), to: output)
        if outputOptions.json {
            try printJSON(PredictReport(model: model, input: input, output: output, inputShape: x.shape, outputShape: y.shape))
        } else {
            print("wrote \(output): \(y.shape.map(String.init).joined(separator: "x")) \(probabilities ? "probabilities" : "logits")")
        }
    }

    func softmaxRows(_ t: Tensor) -> Tensor {
        let cols = t.shape.last ?? 1
        var v = t.floats
        for r in 0..<(v.count / max(cols, 1)) {
            let row = (r * cols)..<((r + 1) * cols)
            let m = v[row].max() ?? 0
            var sum: Float = 0
            for i in row { v[i] = exp(v[i] - m); sum += v[i] }
            for i in row { v[i] /= sum }
        }
        return Tensor(shape: t.shape, floats: v)
    }

    struct PredictReport: Encodable {
        var model: String
        var input: String
        var output: String
        var inputShape: [Int]
        var outputShape: [Int]
    }
}

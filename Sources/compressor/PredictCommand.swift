import ArgumentParser
import Compress
import Foundation

struct PredictCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "predict",
        abstract: "Run input arrays (.npy) through a model and write its outputs (.npy).",
        discussion: """
        The model is a compressor model file or an ONNX file (told apart by content). \
        By default the input is float32 pixels in [0,1] (or uint8 0-255, scaled by 1/255), \
        shaped [N, C, H, W] or [C, H, W] for one image; the model applies its own \
        normalization, and the output is its first output (logits), [N, classes].

        With --raw, arrays go to the graph inputs as they are (converted to float32, no \
        uint8 scaling; a normalization stored in the model still applies, as it is part \
        of the model), and every graph output can be written. Name inputs \
        with --input NAME=FILE (repeatable; the positional input feeds the first graph \
        input). Write outputs with -o once per output, in graph order, or all of them \
        with --output-dir DIR as DIR/<output name>.npy.

        Examples:
          compressor predict model.bin x.npy -o logits.npy
          compressor predict model.onnx --raw --input x=x.npy --input y=y.npy -o out0.npy -o out1.npy
          compressor predict model.onnx x.npy --raw --output-dir outs/
        """)

    @Argument(help: ArgumentHelp("Model file (native or ONNX).", valueName: "model"))
    var model: String

    @Argument(help: ArgumentHelp("Input array (.npy) for the first graph input.", valueName: "input"))
    var input: String?

    @Option(name: .customLong("input"), help: ArgumentHelp("A named graph input: NAME=FILE.npy (repeatable).", valueName: "name=file"))
    var namedInputs: [String] = []

    @Option(name: .shortAndLong, help: ArgumentHelp("Output array (.npy); repeat for the next graph outputs.", valueName: "file"))
    var output: [String] = []

    @Option(name: .long, help: ArgumentHelp("Write every graph output to DIR/<name>.npy.", valueName: "dir"))
    var outputDir: String?

    @Flag(name: .long, help: "Feed arrays to the graph inputs as they are: no uint8 scaling (the model's own normalization, part of the model, still applies).")
    var raw = false

    @Flag(name: .long, help: "Write softmax probabilities (over the last axis) instead of logits.")
    var probabilities = false

    @OptionGroup var threadsOption: ThreadsOption
    @OptionGroup var kernelsOption: KernelsOption
    @OptionGroup var maxMemoryOption: MaxMemoryOption

    @OptionGroup var outputOptions: OutputOptions

    func validate() throws {
        guard input != nil || !namedInputs.isEmpty else { throw ValidationError("give an input array, or --input NAME=FILE") }
        guard !output.isEmpty || outputDir != nil else { throw ValidationError("give -o FILE (once per output) or --output-dir DIR") }
    }

    func run() throws {
        let m = try loadRunnableModel(model)
        let feeds = try inputFeeds(m)
        let session = try Session(model: m, threads: threadsOption.threads)
        let values = try session.run(inputs: feeds, normalizing: true)
        var results = m.graph.outputs.map { (name: $0, value: values[$0]!) }
        if probabilities { results = results.map { ($0.name, softmaxRows($0.value)) } }
        let written = try write(results)
        report(written, inputShape: feeds[m.graph.inputs.first?.name ?? ""]?.shape ?? [])
    }

    /// The arrays for the graph inputs, by name, checked against the model's sample shapes.
    func inputFeeds(_ m: Model) throws -> [String: Tensor] {
        var files: [(name: String, path: String)] = []
        if let input {
            guard let first = m.graph.inputs.first else { throw CLIError("\(model): the graph has no inputs") }
            files.append((first.name, input))
        }
        for spec in namedInputs {
            guard let eq = spec.firstIndex(of: "="), eq != spec.startIndex else {
                throw CLIError("--input takes NAME=FILE.npy, got '\(spec)'")
            }
            files.append((String(spec[..<eq]), String(spec[spec.index(after: eq)...])))
        }
        var feeds: [String: Tensor] = [:]
        for (name, path) in files {
            guard let graphInput = m.graph.inputs.first(where: { $0.name == name }) else {
                throw CLIError("the model has no input '\(name)' (inputs: \(m.graph.inputs.map(\.name).joined(separator: ", ")))")
            }
            feeds[name] = try load(path, sampleShape: graphInput.sampleShape)
        }
        return feeds
    }

    /// One input array as float32 `[N] + sampleShape`.
    func load(_ path: String, sampleShape: [Int]) throws -> Tensor {
        var x = try NPY.read(path: path)
        if !raw, case .uint8(let bytes) = x.storage { x = Tensor(shape: x.shape, floats: bytes.map { Float(pixel: $0) }) }
        x = x.asFloat32()
        if x.shape == sampleShape { x = try x.reshaped([1] + sampleShape) }
        guard x.rank >= 1, Array(x.shape.dropFirst()) == sampleShape else {
            throw CLIError("input \(path) has shape \(x.shape), but the model takes [N, \(sampleShape.map(String.init).joined(separator: ", "))]")
        }
        return x
    }

    /// Writes `-o` files in output order and every output under `--output-dir`; returns (path, shape) pairs.
    func write(_ results: [(name: String, value: Tensor)]) throws -> [(String, [Int])] {
        guard output.count <= results.count else {
            throw CLIError("\(output.count) output files given, the model has \(results.count) output\(results.count == 1 ? "" : "s")")
        }
        var written: [(String, [Int])] = []
        for (path, result) in zip(output, results) {
            try writeFileAtomically(NPY.encode(result.value), to: path)
            written.append((path, result.value.shape))
        }
        if let outputDir {
            try FileManager.default.createDirectory(atPath: outputDir, withIntermediateDirectories: true)
            for result in results {
                let safe = String(result.name.map { $0.isLetter || $0.isNumber || "-_.".contains($0) ? $0 : "_" })
                let path = (outputDir as NSString).appendingPathComponent("\(safe).npy")
                try writeFileAtomically(NPY.encode(result.value), to: path)
                written.append((path, result.value.shape))
            }
        }
        return written
    }

    func report(_ written: [(String, [Int])], inputShape: [Int]) {
        if outputOptions.json {
            let first = written[0]
            try? printJSON(PredictReport(model: model, input: input ?? namedInputs.joined(separator: ","), output: first.0,
                                         inputShape: inputShape, outputShape: first.1,
                                         outputs: written.map { OutputFile(path: $0.0, shape: $0.1) }))
        } else {
            for (path, shape) in written {
                print("wrote \(path): \(shape.map(String.init).joined(separator: "x")) \(probabilities ? "probabilities" : (raw ? "values" : "logits"))")
            }
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

    struct OutputFile: Encodable {
        var path: String
        var shape: [Int]
    }

    struct PredictReport: Encodable {
        var model: String
        var input: String
        var output: String
        var inputShape: [Int]
        var outputShape: [Int]
        var outputs: [OutputFile]
    }
}

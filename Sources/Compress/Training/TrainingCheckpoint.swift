import Foundation

/// What one finished epoch measured. Only deterministic numbers go into model
/// files; `seconds` and `imagesPerSecond` are for progress output.
public struct EpochSummary: Sendable, Equatable, Codable {
    public var epoch: Int
    public var trainLoss: Double
    public var trainAccuracy: Double
    public var validationAccuracy: Double
    public var learningRate: Double
    public var seconds: Double
    public var imagesPerSecond: Double
    /// Time per step, full and (multirate) fast-only; absent in checkpoints written before it was measured.
    public var steps: TrainingStepTimes?
}

/// The per-epoch checkpoint of a training run: a directory holding the model
/// after the last finished epoch, the best model so far, the optimizer state,
/// the shadow weights of quantization-aware training and the auxiliary loss's
/// state (when there are any) and `state.json`, which is written last and names the others, so a run
/// stopped at any moment resumes from the last finished epoch.
struct TrainingCheckpoint {
    struct State: Codable {
        var formatVersion = 1
        var completedEpochs: Int
        var bestEpoch: Int
        var bestValidationAccuracy: Double
        var settings: [String: String]
        var epochs: [EpochSummary]
        var currentFile: String
        var optimizerFile: String
        var bestFile: String
        /// The shadow weights of quantization-aware training, when there are any.
        var shadowFile: String?
        /// The auxiliary loss's learned state (hint adapters and their optimizer), when it has one.
        var auxiliaryFile: String?
    }

    let directory: String

    var statePath: String { directory + "/state.json" }

    func exists() -> Bool { FileManager.default.fileExists(atPath: statePath) }

    func loadState() throws -> State {
        guard let data = FileManager.default.contents(atPath: statePath) else {
            throw CheckpointError("no checkpoint to resume in \(directory)")
        }
        do {
            let state = try JSONDecoder().decode(State.self, from: data)
            guard state.formatVersion == 1 else { throw CheckpointError("checkpoint \(statePath) has unknown format \(state.formatVersion)") }
            return state
        } catch let error as CheckpointError {
            throw error
        } catch {
            throw CheckpointError("checkpoint \(statePath) is unreadable: \(error)")
        }
    }

    func loadModel(_ file: String) throws -> Model { try ModelFile.read(path: directory + "/" + file) }

    func loadOptimizerState(_ file: String) throws -> [String: Tensor] { try loadTensors(file) }

    /// The tensors of a file written from a graph of initializers alone.
    func loadTensors(_ file: String) throws -> [String: Tensor] {
        try ModelFile.read(path: directory + "/" + file).graph.initializers
    }

    /// Writes the epoch's files, then the state that points at them, then removes older epoch files.
    func save(state: State, current: Model, best: Model?, optimizer: [String: Tensor],
              shadows: [String: Tensor] = [:], auxiliary: [String: Tensor] = [:]) throws {
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        try ModelFile.write(current, to: directory + "/" + state.currentFile)
        let optimizerModel = Model(graph: Graph(inputs: [], outputs: [], nodes: [], initializers: optimizer))
        try ModelFile.write(optimizerModel, to: directory + "/" + state.optimizerFile)
        if let shadowFile = state.shadowFile {
            let shadowModel = Model(graph: Graph(inputs: [], outputs: [], nodes: [], initializers: shadows))
            try ModelFile.write(shadowModel, to: directory + "/" + shadowFile)
        }
        if let auxiliaryFile = state.auxiliaryFile {
            let auxiliaryModel = Model(graph: Graph(inputs: [], outputs: [], nodes: [], initializers: auxiliary))
            try ModelFile.write(auxiliaryModel, to: directory + "/" + auxiliaryFile)
        }
        if let best { try ModelFile.write(best, to: directory + "/" + state.bestFile) }
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        try writeFileAtomically(Array(try encoder.encode(state)), to: statePath)
        let keep = Set([state.currentFile, state.optimizerFile, state.bestFile, "state.json"] + [state.shadowFile, state.auxiliaryFile].compactMap { $0 })
        for file in (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? [] where !keep.contains(file) {
            if file.hasPrefix("epoch-") || file.hasPrefix("optimizer-") || file.hasPrefix("shadow-") || file.hasPrefix("auxiliary-") { try? FileManager.default.removeItem(atPath: directory + "/" + file) }
        }
    }
}

/// A checkpoint that cannot be resumed.
public struct CheckpointError: Error, CustomStringConvertible {
    public var description: String
    init(_ d: String) { description = d }
}

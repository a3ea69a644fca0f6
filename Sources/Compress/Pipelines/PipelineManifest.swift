import Foundation

/// What one step did, as printed per step, kept in the resume manifest and
/// returned in the run's summary.
public struct PipelineStepResult: Sendable, Codable, Equatable {
    /// 1-based position in the pipeline.
    public var number: Int
    public var name: String
    /// Every parameter's value as text, defaults included.
    public var parameters: [String: String]
    /// The step's seed (derived from the pipeline seed and the step number).
    public var seed: UInt64
    /// The model file the step wrote; nil for steps that do not change the model (eval).
    public var file: String?
    /// What changed, one line each.
    public var changes: [String]
    /// Deterministic numbers the step measured.
    public var metrics: [String: Double]
    /// Test accuracy, for eval steps.
    public var accuracy: AccuracyResult?
    /// Wall-clock time the step took.
    public var seconds: Double
    /// True when the step finished in an earlier run and was skipped by `--resume`.
    public var resumed = false
}

/// The `state.json` in a pipeline's steps directory: which steps finished,
/// and a fingerprint of the pipeline and its inputs so `--resume` refuses to
/// continue a different run. Written atomically after every step.
struct PipelineManifest: Codable {
    var formatVersion = 1
    /// FNV-1a hash of `fingerprint`, in hex.
    var hash: String
    /// One line per thing that determines the result (input bytes, data, seed, each step).
    var fingerprint: [String]
    /// The finished steps, in order.
    var steps: [PipelineStepResult]

    static let fileName = "state.json"

    static func load(from directory: String) throws -> PipelineManifest? {
        let path = directory + "/" + fileName
        guard let data = FileManager.default.contents(atPath: path) else { return nil }
        do { return try JSONDecoder().decode(PipelineManifest.self, from: data) } catch {
            throw PipelineResumeError("cannot resume: \(path) is damaged (\(error)); run without --resume to start over")
        }
    }

    func save(to directory: String) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        try writeFileAtomically(Array(try encoder.encode(self)), to: directory + "/" + Self.fileName)
    }

    /// How many of this manifest's finished steps a run with `fingerprint`
    /// can reuse: all of them when nothing changed; when only steps changed,
    /// the finished steps before the first changed one (a step's result
    /// depends on the input, the data, the seed and the steps up to it
    /// alone). Throws, naming the first lines that differ, when the input
    /// model, data, seed, threads or image limit changed.
    func reusableSteps(for fingerprint: [String], directory: String) throws -> Int {
        func isStep(_ line: String) -> Bool { line.hasPrefix("step ") }
        let (runThen, runNow) = (self.fingerprint.filter { !isStep($0) }, fingerprint.filter { !isStep($0) })
        guard runThen == runNow else {
            let count = max(runThen.count, runNow.count)
            let differing = (0..<count).compactMap { i -> String? in
                let then = i < runThen.count ? runThen[i] : "(none)"
                let now = i < runNow.count ? runNow[i] : "(none)"
                return then == now ? nil : "was '\(then)', now '\(now)'"
            }
            throw PipelineResumeError("""
                cannot resume from \(directory): the pipeline or its inputs changed since that run \
                (\(differing.prefix(3).joined(separator: "; "))); run without --resume to start over
                """)
        }
        let (stepsThen, stepsNow) = (self.fingerprint.filter(isStep), fingerprint.filter(isStep))
        let unchanged = zip(stepsThen, stepsNow).prefix { $0 == $1 }.count
        return min(unchanged, steps.count)
    }
}

/// The steps directory cannot be used: its manifest is damaged or belongs to
/// another run (`--resume`), or it is not a steps directory at all.
public struct PipelineResumeError: Error, CustomStringConvertible {
    public var description: String
    init(_ message: String) { description = message }
}

/// 64-bit FNV-1a of `bytes`: a fingerprint, not a cryptographic hash.
func fnv1a(_ bytes: some Sequence<UInt8>, seed: UInt64 = 0xCBF2_9CE4_8422_2325) -> UInt64 {
    var h = seed
    for b in bytes { h = (h ^ UInt64(b)) &* 0x0000_0100_0000_01B3 }
    return h
}

/// 64-bit FNV-1a of a byte array, looping over its buffer.
func fnv1a(_ bytes: [UInt8]) -> UInt64 {
    bytes.withUnsafeBufferPointer { fnv1a($0) }
}

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
/// with the size and hash of the model file each wrote, and a fingerprint of
/// the pipeline and its inputs (the data's content included) so `--resume`
/// refuses to continue a different run or to reuse a step file changed since.
/// Written atomically after every step.
struct PipelineManifest: Codable {
    /// 2 since step files and data files are hashed; a manifest of format 1
    /// (path-only data fingerprint, no step file hashes) is refused on resume.
    var formatVersion = Self.currentFormatVersion
    /// FNV-1a hash of `fingerprint` and `dataFiles`, in hex.
    var hash: String
    /// One line per thing that determines the result (input bytes, data
    /// directory, seed, each step).
    var fingerprint: [String]
    /// Every file the data loader reads, by name within the data directory.
    var dataFiles: [String: FileFingerprint]
    /// The finished steps, in order.
    var steps: [Step]

    /// A finished step: what it did and the model file it wrote.
    struct Step: Codable {
        var result: PipelineStepResult
        /// Size and hash of `result.file` when the step finished; nil for steps that write no model (eval).
        var file: FileFingerprint?
    }

    static let fileName = "state.json"
    static let currentFormatVersion = 2

    init(fingerprint: [String], dataFiles: [String: FileFingerprint]) {
        self.fingerprint = fingerprint
        self.dataFiles = dataFiles
        let dataLines = dataFiles.keys.sorted().map { "data-file \($0) \(dataFiles[$0]!.bytes) \(dataFiles[$0]!.fnv1a)" }
        hash = String(fnv1a(Array((fingerprint + dataLines).joined(separator: "\n").utf8)), radix: 16)
        steps = []
    }

    /// The manifest in `directory`, nil when there is none. Throws when it is
    /// damaged or of another format version than this build writes.
    static func load(from directory: String) throws -> PipelineManifest? {
        let path = directory + "/" + fileName
        guard let data = FileManager.default.contents(atPath: path) else { return nil }
        struct Version: Decodable { var formatVersion: Int }
        let version: Int
        do { version = try JSONDecoder().decode(Version.self, from: data).formatVersion } catch {
            throw PipelineResumeError("cannot resume: \(path) is damaged (\(error)); run without --resume to start over")
        }
        guard version == currentFormatVersion else {
            let why = version < currentFormatVersion
                ? "an older compressor wrote it (format \(version)) without the data's content and step file hashes"
                : "a newer compressor wrote it (format \(version); this one reads format \(currentFormatVersion))"
            throw PipelineResumeError("""
                cannot resume from \(directory): \(why), so its finished steps cannot be checked; \
                run without --resume to start over
                """)
        }
        do { return try JSONDecoder().decode(PipelineManifest.self, from: data) } catch {
            throw PipelineResumeError("cannot resume: \(path) is damaged (\(error)); run without --resume to start over")
        }
    }

    func save(to directory: String) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        try writeFileAtomically(Array(try encoder.encode(self)), to: directory + "/" + Self.fileName)
    }

    /// How many steps, from the first, are unchanged in a run with
    /// `fingerprint` and `dataFiles` (finished or not: the caller caps it at
    /// the finished ones). A step's result depends on the input, the data, the
    /// seed and the steps up to it alone. Throws, naming the first lines that
    /// differ, when the input model, data directory, seed, threads or image
    /// limit changed, and naming the files, when the data's content changed.
    func unchangedSteps(for fingerprint: [String], dataFiles: [String: FileFingerprint], directory: String) throws -> Int {
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
        let changedData = Set(self.dataFiles.keys).union(dataFiles.keys).sorted().compactMap { name -> String? in
            switch (self.dataFiles[name], dataFiles[name]) {
            case let (then?, now?) where then != now:
                return then.bytes == now.bytes ? "\(name): content differs"
                    : "\(name): \(then.bytes) bytes then, \(now.bytes) now"
            case (_?, nil): return "\(name): gone"
            case (nil, _?): return "\(name): new"
            default: return nil
            }
        }
        guard changedData.isEmpty else {
            throw PipelineResumeError("""
                cannot resume from \(directory): the data changed since that run \
                (\(changedData.joined(separator: "; "))); run without --resume to start over
                """)
        }
        let (stepsThen, stepsNow) = (self.fingerprint.filter(isStep), fingerprint.filter(isStep))
        return zip(stepsThen, stepsNow).prefix { $0 == $1 }.count
    }

    /// Checks that each of the first `count` finished steps' model file is
    /// still the file the step wrote (same size and hash), else throws naming
    /// the step and its file and how to rerun it.
    func checkStepFiles(upTo count: Int, directory: String) throws {
        for step in steps.prefix(count) {
            guard let path = step.result.file else { continue }
            let label = "step \(step.result.number) (\(step.result.name)) file \(path)"
            let problem: String
            if !FileManager.default.fileExists(atPath: path) {
                problem = "\(label) is missing"
            } else {
                let now = FileFingerprint(of: try readFile(path))
                guard let then = step.file else {
                    throw PipelineResumeError("cannot resume: \(directory)/\(Self.fileName) is damaged (no hash for \(label)); run without --resume to start over")
                }
                if now == then { continue }
                problem = "\(label) was modified after that run (" + (then.bytes == now.bytes
                    ? "its content differs from the hash \(Self.fileName) recorded)"
                    : "\(then.bytes) bytes then, \(now.bytes) now)")
            }
            throw PipelineResumeError("""
                cannot resume from \(directory): \(problem); run with --rerun-from \(step.result.number) \
                to rerun from that step, or without --resume to start over
                """)
        }
    }
}

/// A file's size and the 64-bit FNV-1a hash of its bytes: how the resume
/// manifest notices a file that changed under the same name.
struct FileFingerprint: Codable, Equatable {
    /// Size in bytes.
    var bytes: Int
    /// FNV-1a of the content, in hex.
    var fnv1a: String

    init(of content: [UInt8]) {
        bytes = content.count
        fnv1a = String(Compress.fnv1a(content), radix: 16)
    }
}

/// The steps directory cannot be used: its manifest is damaged or belongs to
/// another run (`--resume`), or it is not a steps directory at all.
public struct PipelineResumeError: Error, CustomStringConvertible {
    public var description: String
    init(_ message: String) { description = message }
}

/// 64-bit FNV-1a of `bytes`: a fingerprint, not a cryptographic hash. About
/// 1 GB/s in a release build (what fingerprinting the data costs every pipeline run).
func fnv1a(_ bytes: [UInt8]) -> UInt64 {
    bytes.withUnsafeBufferPointer { buffer in
        var h: UInt64 = 0xCBF2_9CE4_8422_2325
        for i in 0..<buffer.count { h = (h ^ UInt64(buffer[i])) &* 0x0000_0100_0000_01B3 }
        return h
    }
}

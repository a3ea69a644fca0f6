#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Synchronization

/// How many bytes a command may allocate for tensors: weights, activations,
/// workspace and training state.
///
/// Work that would allocate a lot checks its estimate against the budget
/// first (`check`) and refuses with `MemoryBudgetExceeded`, naming the
/// largest tensor, instead of letting the allocation abort the process.
/// Loaders check the tensor sizes a file declares the same way before
/// allocating them.
public struct MemoryBudget: Sendable, Equatable, CustomStringConvertible {
    /// The most bytes the work may allocate.
    public var bytes: Int
    /// Where the number came from, for messages: "--max-memory 2GB",
    /// "75% of this machine's 23.4 GiB".
    public var origin: String

    public init(bytes: Int, origin: String? = nil) {
        self.bytes = max(0, bytes)
        self.origin = origin ?? MemoryBudget.format(bytes: bytes)
    }

    public var description: String { "\(MemoryBudget.format(bytes: bytes)) (\(origin))" }

    /// The share of the machine's memory the default budget allows.
    public static let defaultFraction = 0.75

    /// Bytes of memory this process can use: the machine's physical memory,
    /// or the cgroup's memory limit when that is lower (containers).
    public static let availableMemory: Int = {
        let pages = Int(sysconf(Int32(_SC_PHYS_PAGES)))
        let pageSize = Int(sysconf(Int32(_SC_PAGESIZE)))
        var total = pages > 0 && pageSize > 0 ? pages.multipliedReportingOverflow(by: pageSize).partialValue : Int.max
        for file in ["/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"] {
            if let limit = readLimit(file), limit > 0 { total = min(total, limit) }
        }
        return total
    }()

    /// `defaultFraction` of `availableMemory`.
    public static var machineDefault: MemoryBudget {
        MemoryBudget(bytes: Int(Double(availableMemory) * defaultFraction),
                     origin: "\(Int(defaultFraction * 100))% of this machine's \(format(bytes: availableMemory))")
    }

    private static let budgetForProcess = Mutex<MemoryBudget?>(nil)

    /// The budget loaders and planners check when none is given:
    /// `machineDefault`, unless the CLI's `--max-memory` set another for the
    /// whole process (library code passes a budget explicitly instead).
    public static var processDefault: MemoryBudget {
        get { budgetForProcess.withLock { $0 } ?? machineDefault }
        set { budgetForProcess.withLock { $0 = newValue } }
    }

    /// Parses a size: bytes ("1000000"), decimal units ("512MB", "1.5GB",
    /// "kB", "TB"), binary units ("512MiB", "2G", "2GiB": K, M, G and T alone
    /// are binary, as in `ulimit` and Docker) or a share of `availableMemory`
    /// ("50%").
    public init(parsing text: String) throws(MemoryBudgetParseError) {
        let trimmed = text.trimmingSpaces()
        if trimmed.hasSuffix("%") {
            guard let percent = Double(trimmed.dropLast()), percent > 0, percent <= 100 else {
                throw MemoryBudgetParseError(text: text)
            }
            self.init(bytes: Int(Double(MemoryBudget.availableMemory) * percent / 100),
                      origin: "\(trimmed) of this machine's \(MemoryBudget.format(bytes: MemoryBudget.availableMemory))")
            return
        }
        let digits = trimmed.prefix { $0.isNumber || $0 == "." }
        let unit = trimmed.dropFirst(digits.count).trimmingSpaces().lowercased()
        let scale: Double
        switch unit {
        case "", "b": scale = 1
        case "kb": scale = 1e3
        case "mb": scale = 1e6
        case "gb": scale = 1e9
        case "tb": scale = 1e12
        case "k", "kib": scale = 1024
        case "m", "mib": scale = 1_048_576
        case "g", "gib": scale = 1_073_741_824
        case "t", "tib": scale = 1_099_511_627_776
        default: throw MemoryBudgetParseError(text: text)
        }
        guard let value = Double(digits), value > 0, value * scale < 9e18 else { throw MemoryBudgetParseError(text: text) }
        self.init(bytes: Int(value * scale), origin: trimmed)
    }

    /// Throws `MemoryBudgetExceeded` when `need` does not fit.
    public func check(_ need: MemoryNeed) throws(MemoryBudgetExceeded) {
        guard need.bytes <= bytes else { throw MemoryBudgetExceeded(need: need, budget: self) }
    }

    /// `bytes` in a binary unit with one decimal: "40.2 GiB".
    public static func format(bytes: Int) -> String {
        let units = ["B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"]
        var value = Double(bytes)
        var unit = 0
        while value >= 1024 && unit < units.count - 1 {
            value /= 1024
            unit += 1
        }
        if unit == 0 { return "\(bytes) B" }
        let tenths = Int((value * 10).rounded())
        return "\(tenths / 10).\(tenths % 10) \(units[unit])"
    }

    private static func readLimit(_ path: String) -> Int? {
        guard let file = fopen(path, "r") else { return nil }
        defer { fclose(file) }
        var buffer = [CChar](repeating: 0, count: 64)
        guard fgets(&buffer, Int32(buffer.count), file) != nil else { return nil }
        let text = String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        return Int(text.trimmingSpaces())  // "max" (no limit) gives nil
    }
}

/// What some work would allocate: its total and its largest tensor.
public struct MemoryNeed: Sendable, Equatable {
    /// What needs it: "running batch 64 of model.onnx", "loading model.bin".
    public var purpose: String
    /// Total bytes.
    public var bytes: Int
    /// The largest single tensor, named for the message.
    public var largest: TensorSize?

    /// One tensor of a need.
    public struct TensorSize: Sendable, Equatable {
        public var name: String
        public var shape: [Int]
        public var bytes: Int
        public init(name: String, shape: [Int], bytes: Int) {
            self.name = name; self.shape = shape; self.bytes = bytes
        }

        /// A tensor of `shape` with `elementSize`-byte elements (float32 unless
        /// said), its bytes saturating at `Int.max` (`MemoryNeed.bytes`).
        public init(name: String, shape: [Int], elementSize: Int = 4) {
            self.init(name: name, shape: shape, bytes: MemoryNeed.bytes(elements: shape, elementSize: elementSize))
        }
    }

    public init(purpose: String, bytes: Int, largest: TensorSize? = nil) {
        self.purpose = purpose; self.bytes = bytes; self.largest = largest
    }

    /// The need of `tensors` (name, shape, bytes each), totalled with
    /// overflow saturating at `Int.max`.
    public init(purpose: String, tensors: [TensorSize], extraBytes: Int = 0) {
        self.init(purpose: purpose, bytes: tensors.map(\.bytes).reduce(extraBytes, addingSaturated),
                  largest: tensors.max { $0.bytes < $1.bytes })
    }

    /// Bytes of `count` elements of `elementSize` bytes each, saturating at
    /// `Int.max` (a declared shape can be any size).
    public static func bytes(elements shape: [Int], elementSize: Int) -> Int {
        var total = elementSize
        for d in shape {
            guard d >= 0 else { return Int.max }
            let (product, overflow) = total.multipliedReportingOverflow(by: d)
            if overflow { return Int.max }
            total = product
        }
        return total
    }
}

/// `a + b`, saturating at `Int.max` (sizes from declared shapes can be any size): how memory needs are totalled.
func addingSaturated(_ a: Int, _ b: Int) -> Int {
    let (sum, overflow) = a.addingReportingOverflow(b)
    return overflow ? Int.max : sum
}

/// `a * b`, saturating at `Int.max`.
func multipliedSaturated(_ a: Int, _ b: Int) -> Int {
    let (product, overflow) = a.multipliedReportingOverflow(by: b)
    return overflow ? Int.max : product
}

/// Some work would allocate more than the memory budget allows.
public struct MemoryBudgetExceeded: Error, Equatable, CustomStringConvertible {
    public var need: MemoryNeed
    public var budget: MemoryBudget

    public var description: String {
        var text = "\(need.purpose) needs \(MemoryBudget.format(bytes: need.bytes)) of memory"
        if let t = need.largest {
            let shape = t.shape.map(String.init).joined(separator: "x")
            text += " (largest tensor: '\(t.name)' \(shape), \(MemoryBudget.format(bytes: t.bytes)))"
        }
        text += ", more than the memory budget of \(budget.description); raise it with --max-memory if the machine has the memory"
        return text
    }
}

/// A `--max-memory` value that is not a size.
public struct MemoryBudgetParseError: Error, Equatable, CustomStringConvertible {
    public var text: String
    public var description: String {
        "'\(text)' is not a memory size: give bytes or a number with a unit (512MB, 1.5GB, 2GiB, 2G) or a share of memory (50%)"
    }
}

private extension StringProtocol {
    func trimmingSpaces() -> String {
        String(drop { $0 == " " || $0 == "\n" || $0 == "\t" }.reversed().drop { $0 == " " || $0 == "\n" || $0 == "\t" }.reversed())
    }
}

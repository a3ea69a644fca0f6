import ArgumentParser
import Compress

extension Architecture: ExpressibleByArgument {}

/// A built-in architecture at a width multiplier: `init` and `train`.
struct ArchitectureOptions: ParsableArguments {
    @Option(name: .long, help: "Architecture to build.")
    var arch: Architecture

    @Option(name: .long, help: """
        Width multiplier of the hidden layers' channels (and hidden fully connected features): \
        rounded to a multiple of 8 where the original count is one, else to the nearest \
        integer, at least 1. 1 is the architecture as published.
        """)
    var width: Double = 1

    func validate() throws {
        guard width > 0 && width.isFinite else { throw ValidationError("--width must be positive, got \(width)") }
    }

    func build(seed: UInt64) -> Model { arch.build(seed: seed, width: width) }

    /// "vgg-small" or "vgg-small at width 0.5".
    var description: String { arch.rawValue + (width == 1 ? "" : " at width \(width)") }
}

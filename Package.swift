// swift-tools-version:6.0
import PackageDescription

// COMPRESSOR_FUZZ=1 adds the libFuzzer executable (scripts/fuzz.sh builds it
// with --sanitize fuzzer --sanitize address into .build-fuzz); the normal
// build and CI never see it.
let fuzzing = Context.environment["COMPRESSOR_FUZZ"] == "1"

let package = Package(
    name: "compressor",
    products: [
        .library(name: "Compress", targets: ["Compress"]),
        .library(name: "Prune", targets: ["Prune"]),
        .library(name: "LowRank", targets: ["LowRank"]),
        .library(name: "Distill", targets: ["Distill"]),
        .executable(name: "compressor", targets: ["compressor"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        // YAML for pipeline files (Sources/Compress/Pipelines); pure Swift plus a vendored libyaml.
        .package(url: "https://github.com/jpsim/Yams", from: "6.2.2"),
    ],
    targets: [
        // C libraries from Debian, found through pkg-config.
        .systemLibrary(name: "CBLAS", pkgConfig: "openblas",
                       providers: [.apt(["libopenblas-dev"])]),
        .systemLibrary(name: "CLAPACKE", pkgConfig: "lapacke",
                       providers: [.apt(["liblapacke-dev"])]),
        .systemLibrary(name: "CProtobufC", pkgConfig: "libprotobuf-c",
                       providers: [.apt(["libprotobuf-c-dev"])]),
        .systemLibrary(name: "CZlib", pkgConfig: "zlib",
                       providers: [.apt(["zlib1g-dev"])]),
        // C code generated from proto/model.proto by scripts/gen-proto.sh.
        .target(name: "CModelProto", dependencies: ["CProtobufC"]),
        .target(name: "COnnxProto", dependencies: ["CProtobufC"]),
        // CPU feature detection for choosing kernels at plan time.
        .target(name: "CCPUFeatures"),
        // SIMD kernels (NCHW8c direct convolution and friends), compiled for
        // AVX2 + FMA so `SIMD8<Float>` maps to ymm registers and vfmadd; only
        // called after `cpuSupportsBlockedKernels`. unsafeFlags are accepted
        // for root packages only: a package depending on this one would need
        // these kernels moved behind a C target with target attributes.
        // "-O" keeps the kernels optimized in debug builds too, so tests run them at speed.
        .target(name: "SIMDKernels", dependencies: ["CCPUFeatures"],
                swiftSettings: [.unsafeFlags(["-Xcc", "-mavx2", "-Xcc", "-mfma", "-O"])]),
        // The width-16 kernels (two NCHW8c blocks per 16-lane vector), one Swift
        // source compiled twice: natively for AVX-512 (zmm registers; only called
        // after `cpuSupportsWideKernels512`), and as SIMDKernelsWide16 with AVX2
        // flags only, whose files are symlinks to SIMDKernels512's, so the same
        // algorithm is tested on every AVX2 machine. Their SIMD operations are
        // the always-inline C helpers of CCPUFeatures/include/simd_wide.h.
        .target(name: "SIMDKernels512", dependencies: ["CCPUFeatures", "SIMDKernels"],
                swiftSettings: [.unsafeFlags(["-Xcc", "-mavx512f", "-Xcc", "-mavx512vl", "-Xcc", "-mavx2",
                                              "-Xcc", "-mfma", "-O"])]),
        .target(name: "SIMDKernelsWide16", dependencies: ["CCPUFeatures", "SIMDKernels"],
                swiftSettings: [.unsafeFlags(["-Xcc", "-mavx2", "-Xcc", "-mfma", "-O"])]),
        .target(name: "Compress", dependencies: ["CBLAS", "CLAPACKE", "CProtobufC", "CZlib", "CModelProto", "COnnxProto",
                                                 "SIMDKernels", "SIMDKernels512", "SIMDKernelsWide16",
                                                 .product(name: "Yams", package: "Yams")]),
        .target(name: "Prune", dependencies: ["Compress"]),
        .target(name: "LowRank", dependencies: ["Compress", "CLAPACKE", "CBLAS"]),
        .target(name: "Distill", dependencies: ["Compress"]),
        .executableTarget(name: "compressor", dependencies: [
            "Compress", "Prune", "LowRank", "Distill",
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
        ]),
        // What `compressor info`, `run`'s checks and the data readers do with
        // a file's bytes, for the fuzz targets and the test replaying their finds.
        .target(name: "FuzzEntries", dependencies: ["Compress", "Prune", "LowRank", "Distill", "CZlib"]),
        .testTarget(name: "CompressTests", dependencies: ["Compress", "SIMDKernels", "SIMDKernels512", "SIMDKernelsWide16", "COnnxProto", "CModelProto", "FuzzEntries"], exclude: ["Fixtures"]),
        .testTarget(name: "PruneTests", dependencies: ["Compress", "Prune"]),
        .testTarget(name: "LowRankTests", dependencies: ["Compress", "LowRank"]),
        .testTarget(name: "DistillTests", dependencies: ["Compress", "Distill"]),
        .testTarget(name: "CLITests", dependencies: ["Compress", "Prune", "LowRank", "compressor"]),
    ],
    swiftLanguageModes: [.v6]
)

if fuzzing {
    package.targets.append(.executableTarget(name: "compressor-fuzz", dependencies: ["FuzzEntries"], path: "Fuzz"))
}

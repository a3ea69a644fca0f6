// The libFuzzer entry points (libFuzzer provides `main`). Built only by
// scripts/fuzz.sh: COMPRESSOR_FUZZ=1 swift build --sanitize fuzzer --sanitize address.
// The target comes from COMPRESSOR_FUZZ_TARGET (a `FuzzTarget` name).
import FuzzEntries
#if canImport(Glibc)
import Glibc
#endif

nonisolated(unsafe) private var target = FuzzTarget.native

@_cdecl("LLVMFuzzerInitialize")
public func fuzzerInitialize(_ argc: UnsafeMutablePointer<CInt>,
                             _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>>) -> CInt {
    let name = getenv("COMPRESSOR_FUZZ_TARGET").map { String(cString: $0) } ?? ""
    guard let chosen = FuzzTarget(rawValue: name) else {
        let names = FuzzTarget.allCases.map(\.rawValue).joined(separator: ", ")
        print("set COMPRESSOR_FUZZ_TARGET to one of: \(names)")
        exit(2)
    }
    target = chosen
    return 0
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzerTestOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let bytes = size == 0 ? [] : Array(UnsafeBufferPointer(start: data, count: size))
    _ = try? target.run(bytes)
    return 0
}

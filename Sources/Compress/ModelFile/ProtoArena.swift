import CModelProto
import CProtobufC

/// Owns the C memory behind a protobuf-c message tree built for packing:
/// messages, pointer arrays, strings and byte buffers. Everything is freed
/// together when the arena goes away, so a tree never outlives its arena and
/// nothing is freed twice. (Trees produced by `__unpack` are not arena memory:
/// they are released with `__free_unpacked`.)
final class ProtoArena {
    private var blocks: [UnsafeMutableRawPointer] = []

    deinit {
        for block in blocks { block.deallocate() }
    }

    /// Uninitialized room for `count` values of `T`, or nil when `count` is 0
    /// (protobuf-c reads a repeated field's pointer only when its count is positive).
    func allocate<T>(_: T.Type, count: Int) -> UnsafeMutablePointer<T>? {
        guard count > 0 else { return nil }
        let raw = UnsafeMutableRawPointer.allocate(byteCount: MemoryLayout<T>.stride * count,
                                                   alignment: MemoryLayout<T>.alignment)
        blocks.append(raw)
        return raw.bindMemory(to: T.self, capacity: count)
    }

    /// A message initialized by its generated `__init` function (descriptor
    /// set, scalars at their defaults, `has_` flags clear, oneofs unset).
    func message<T>(_ initialize: (UnsafeMutablePointer<T>?) -> Void) -> UnsafeMutablePointer<T> {
        let p = allocate(T.self, count: 1)!
        initialize(p)
        return p
    }

    /// A NUL-terminated copy of `s`. The caller rejects strings containing NUL.
    func string(_ s: String) -> UnsafeMutablePointer<CChar> {
        let utf8 = s.utf8CString
        let p = allocate(CChar.self, count: utf8.count)!
        utf8.withUnsafeBufferPointer { p.initialize(from: $0.baseAddress!, count: $0.count) }
        return p
    }

    /// An array of copies of `values`.
    func array<T>(_ values: [T]) -> UnsafeMutablePointer<T>? {
        guard let p = allocate(T.self, count: values.count) else { return nil }
        values.withUnsafeBufferPointer { p.initialize(from: $0.baseAddress!, count: $0.count) }
        return p
    }

    /// An array of the C strings of `values`.
    func strings(_ values: [String]) -> UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>? {
        array(values.map { Optional(string($0)) })
    }

    /// An array of message pointers.
    func pointers<T>(_ values: [UnsafeMutablePointer<T>]) -> UnsafeMutablePointer<UnsafeMutablePointer<T>?>? {
        array(values.map { Optional($0) })
    }

    /// A byte buffer `count` bytes long, filled by `fill`.
    func bytes(count: Int, _ fill: (UnsafeMutableRawBufferPointer) -> Void) -> ProtobufCBinaryData {
        guard let p = allocate(UInt8.self, count: count) else { return ProtobufCBinaryData(len: 0, data: nil) }
        fill(UnsafeMutableRawBufferPointer(start: p, count: count))
        return ProtobufCBinaryData(len: count, data: p)
    }
}

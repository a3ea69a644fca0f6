#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The native model file (`.bin`): a 24-byte header (magic "CMPRSSR\0",
/// format version, payload length, CRC-32) followed by a protobuf
/// `compressor.Model` message, whose schema is `proto/model.proto`.
///
/// Files are deterministic: the same model always encodes to the same bytes
/// (tensors sorted by name, history keys sorted, no dates). Decoding is exact:
/// `decode(encode(m)) == m`, float bit patterns included. Decoding never traps
/// on bad input; it throws a `ModelFileError` that says what is wrong.
///
/// A float32 tensor is stored sparse when that is smaller, so a pruned model's
/// file shrinks with its sparsity (see `encodingName(of:)`); a weight-shared
/// tensor (`StorageOptions.sharedTensors`) may be stored as a codebook and
/// indices, and with `StorageOptions.huffman` its streams Huffman-coded. In
/// memory every tensor is dense.
public enum ModelFile {
    /// The format version this build writes, and the newest it reads.
    public static let formatVersion: UInt32 = FileHeader.currentVersion

    /// The file bytes of `model`.
    ///
    /// - Throws: `ModelFileError.unencodable` when a name contains a NUL
    ///   character or the model exceeds the format's 4 GiB limit.
    public static func encode(_ model: Model) throws -> [UInt8] {
        let payload = try ProtoEncoder.payload(of: model)
        return FileHeader(payload: payload).bytes + payload
    }

    /// The model in file bytes, after checking the header, length and
    /// checksum, then the content. The tensors' declared dense sizes are
    /// checked against `budget` before any is decoded (a sparse, codebook or
    /// hashed record of a few bytes can declare any size):
    /// `ModelFileError.exceedsMemoryBudget` names the largest.
    public static func decode(_ bytes: [UInt8], budget: MemoryBudget = .processDefault) throws(ModelFileError) -> Model {
        let payload = try FileHeader.payload(of: bytes)
        return try ProtoDecoder.model(fromPayload: payload, budget: budget)
    }

    /// Reads and decodes the model file at `path` (see `decode(_:budget:)`).
    public static func read(path: String, budget: MemoryBudget = .processDefault) throws(ModelFileError) -> Model {
        try decode(try readFile(path), budget: budget)
    }

    /// Encodes `model` and writes it to `path` atomically (see `writeFileAtomically`).
    ///
    /// - Throws: `ModelFileError` when the model cannot be encoded,
    ///   `FileWriteError` when the file cannot be written.
    public static func write(_ model: Model, to path: String) throws {
        try writeFileAtomically(try encode(model), to: path)
    }

    /// Bytes each initializer occupies in the file, by name, with the name of
    /// its encoding (see `encodingName(of:)`): the tensor's record including
    /// its name, shape and framing, so the sizes add up to the file's tensor
    /// bytes. Computed from the schema without serializing any data.
    public static func encodedTensorSizes(_ model: Model) -> [String: EncodedTensorSize] {
        var sizes: [String: EncodedTensorSize] = [:]
        for (name, tensor) in model.graph.initializers {
            sizes[name] = encodedTensorSize(tensor, named: name, storage: model.metadata.storage)
        }
        return sizes
    }

    /// How the initializer `name` is stored with `storage` options, and the bytes of its record.
    static func encodedTensorSize(_ tensor: Tensor, named name: String, storage: StorageOptions) -> EncodedTensorSize {
        let encoding = TensorFileEncoding(choosingFor: tensor, named: name, storage: storage)
        return EncodedTensorSize(encoding: encoding.name(dtype: tensor.dtype),
                                 bytes: encodedTensorRecordSize(tensor, named: name, encoding: encoding))
    }

    /// The file's name for how `tensor`, the initializer `name` of a model
    /// with `storage` options, is stored: "dense-" and its dtype
    /// ("dense-float32", ...), or for a float32 tensor with few enough
    /// non-zeros "sparse-float32/" and the gap width ("sparse-float32/5-bit"):
    /// the relative-index encoding of Han et al., "Deep Compression" (ICLR
    /// 2016), which stores the non-zero elements with the distance from each
    /// to the previous one. A shared tensor may be "codebook/" and the index
    /// width ("codebook/5-bit") or, sparse with indices for values,
    /// "sparse-codebook/" and both widths ("sparse-codebook/4-bit/5-bit"); a
    /// Huffman-coded stream adds "+huffman" to its width. A hashed tensor
    /// (HashedNets) may be "hashed-float32": its buckets and seed. The writer
    /// picks the smallest.
    public static func encodingName(of tensor: Tensor, named name: String = "",
                                    storage: StorageOptions = StorageOptions()) -> String {
        TensorFileEncoding(choosingFor: tensor, named: name, storage: storage).name(dtype: tensor.dtype)
    }
}

/// How one initializer is stored in a model file and how many bytes it takes.
public struct EncodedTensorSize: Sendable, Hashable, Codable {
    /// The encoding's name (`ModelFile.encodingName(of:named:storage:)`), e.g.
    /// "dense-float32", "sparse-float32/5-bit", "codebook/5-bit" or
    /// "sparse-codebook/4-bit+huffman/5-bit+huffman".
    public var encoding: String
    /// Bytes of the tensor's record in the file: data plus name, shape and framing.
    public var bytes: Int

    public init(encoding: String, bytes: Int) { self.encoding = encoding; self.bytes = bytes }
}

extension TensorFileEncoding {
    /// The name `ModelFile.encodingName(of:)` reports.
    func name(dtype: DType) -> String {
        switch self {
        case .dense: "dense-\(dtype.rawValue)"
        case .denseFloat16: "dense-float16"
        case .denseInt8(let grid): "dense-int8/" + (grid.axis == nil ? "per-tensor" : "per-channel")
        case .sparseFloat32(let layout): "sparse-float32/\(layout.gapsName)"
        case .sparseInt8(let layout, let grid):
            "sparse-int8/" + (grid.axis == nil ? "per-tensor" : "per-channel") + "/\(layout.gapsName)"
        case .codebook(let indices): "codebook/\(indices.indicesName)"
        case .sparseCodebook(let layout, let indices): "sparse-codebook/\(layout.gapsName)/\(indices.indicesName)"
        case .hashed: "hashed-float32"
        }
    }
}

extension SparseFloat32Layout {
    var gapsName: String { "\(indexBits)-bit" + (gapCoding.isHuffman ? "+huffman" : "") }
}

extension CodebookLayout {
    var indicesName: String { "\(indexBits)-bit" + (indexCoding.isHuffman ? "+huffman" : "") }
}

/// Size of the `Graph.tensors` entry protobuf-c writes for `tensor` in
/// `encoding`, by default the writer's choice (checked against the packed
/// size in the tests).
func encodedTensorRecordSize(_ tensor: Tensor, named name: String, encoding: TensorFileEncoding? = nil,
                             storage: StorageOptions = StorageOptions()) -> Int {
    var message = lengthDelimitedFieldSize(fieldNumber: 1, contentSize: name.utf8.count)
    if !tensor.shape.isEmpty {
        // int64 varints: negative values would take 10 bytes, shapes have none.
        let shapeBytes = tensor.shape.reduce(0) { $0 + varintSize(UInt64(bitPattern: Int64($1))) }
        message += lengthDelimitedFieldSize(fieldNumber: 2, contentSize: shapeBytes)
    }
    let encoding = encoding ?? TensorFileEncoding(choosingFor: tensor, named: name, storage: storage)
    message += encoding.fieldSize(denseByteCount: tensor.denseByteCount)
    return lengthDelimitedFieldSize(fieldNumber: 4, contentSize: message)
}

/// The whole content of the file at `path`.
func readFile(_ path: String) throws(ModelFileError) -> [UInt8] {
    func failure(_ code: Int32 = errno) -> ModelFileError {
        code == ENOENT ? .fileNotFound(path: path) : .unreadable(path: path, reason: String(cString: strerror(code)))
    }
    let fd = open(path, O_RDONLY | O_CLOEXEC)
    guard fd >= 0 else { throw failure() }
    defer { close(fd) }
    var info = stat()
    guard fstat(fd, &info) == 0 else { throw failure() }
    guard (info.st_mode & S_IFMT) != S_IFDIR else { throw failure(EISDIR) }

    var bytes: [UInt8] = []
    bytes.reserveCapacity(Int(max(info.st_size, 0)))
    var chunk = [UInt8](repeating: 0, count: 1 << 20)
    while true {
        let n = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
        if n < 0 {
            if errno == EINTR { continue }
            throw failure()
        }
        if n == 0 { break }
        bytes.append(contentsOf: chunk[..<n])
    }
    return bytes
}

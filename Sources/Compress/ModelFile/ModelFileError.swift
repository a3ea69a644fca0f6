/// Why a model file could not be read or written. Each case's description is
/// one line meant for the command line, naming what is wrong and, where it
/// helps, what to do about it.
public enum ModelFileError: Error, Equatable, CustomStringConvertible {
    // The file as a whole.
    /// Nothing exists at the path.
    case fileNotFound(path: String)
    /// The path exists but could not be read (a directory, no permission, I/O error).
    case unreadable(path: String, reason: String)
    /// The file has no bytes at all.
    case empty
    /// The file is shorter than the fixed header.
    case tooShort(byteCount: Int, headerSize: Int)
    /// The file does not start with the compressor magic; `looksLike` names
    /// the format it seems to be, when recognisable.
    case wrongMagic(looksLike: String?)
    /// The file uses a format version this build does not understand.
    case newerFormat(version: UInt32, supported: UInt32)
    /// The header's format version is not a valid one (0).
    case invalidFormatVersion(UInt32)
    /// The payload is shorter than the header says: the file was cut off.
    case truncated(expectedPayload: UInt64, actualPayload: Int)
    /// Bytes follow the payload the header describes.
    case trailingBytes(count: Int)
    /// The payload's CRC-32 differs from the header's: the file is corrupt.
    case checksumMismatch(expected: UInt32, actual: UInt32)
    /// The payload passed the checksum but is not a valid protobuf `Model`.
    case malformedPayload
    /// The deflated metadata record cannot be inflated or decoded.
    case invalidMetadata(String)

    // The content.
    /// A required field is absent; `field` is a path such as "node 'conv1': output".
    case missingField(String)
    /// A node's op is none this build knows (written by a newer compressor, or corrupt).
    case unknownOp(node: String)
    /// A tensor's encoding is none this build knows.
    case unknownEncoding(tensor: String)
    /// A tensor's data length does not match its shape and element type.
    case tensorSizeMismatch(tensor: String, shape: [Int64], dtype: DType, expectedBytes: Int?, actualBytes: Int)
    /// A sparse tensor's record is inconsistent: an index width out of range,
    /// byte lengths that do not match the entry count, an entry past the end.
    case invalidSparseTensor(tensor: String, detail: String)
    /// A codebook tensor's record is inconsistent: centroid bytes of the
    /// wrong length, a bad index width, an index past the codebook, an index
    /// stream of the wrong length or a Huffman table that is no prefix code.
    case invalidCodebookTensor(tensor: String, detail: String)
    /// A hashed tensor's record is inconsistent: bucket bytes of the wrong
    /// length, no buckets, more buckets than elements, a bad bucket count in
    /// the storage options.
    case invalidHashedTensor(tensor: String, detail: String)
    /// The storage options name a shared tensor the graph does not have.
    case unknownSharedTensor(String)
    /// The storage options name a hashed tensor the graph does not have.
    case unknownHashedTensor(String)
    /// A tensor's precision record (quantization) is inconsistent: no such
    /// tensor, a stored encoding that is not the precision's, scales or zero
    /// points that do not fit the tensor, a non-positive scale.
    case invalidPrecision(tensor: String, detail: String)
    /// A shape has a negative dimension, or a dimension too large for this machine.
    case invalidShape(context: String, shape: [Int64])
    /// An attribute value is out of range (a non-positive stride, an axis beyond Int).
    case invalidAttribute(node: String, detail: String)
    /// Two tensors, or two history keys, share a name.
    case duplicateName(String)
    /// The tensors the file declares need more memory, decoded to dense
    /// elements, than the memory budget allows (checked before any is decoded).
    case exceedsMemoryBudget(MemoryBudgetExceeded)

    // Writing.
    /// The model cannot be represented in the file (a name with a NUL
    /// character, a tensor beyond the format's 4 GiB limit).
    case unencodable(String)

    public var description: String {
        switch self {
        case .fileNotFound(let path):
            "no such file: \(path)"
        case .unreadable(let path, let reason):
            "cannot read \(path): \(reason)"
        case .empty:
            "the file is empty, not a compressor model file"
        case .tooShort(let n, let header):
            "the file is \(n) bytes, shorter than the \(header)-byte model file header: not a compressor model file, or cut off"
        case .wrongMagic(let looksLike?):
            "not a compressor model file (it looks like \(looksLike))"
        case .wrongMagic(nil):
            "not a compressor model file (unrecognised leading bytes)"
        case .newerFormat(let version, let supported):
            "written by a newer compressor (format \(version) > supported \(supported)): upgrade compressor to read it"
        case .invalidFormatVersion(let version):
            "invalid model file format version \(version): the header is corrupt"
        case .truncated(let expected, let actual):
            "the file is truncated: the header promises \(expected) payload bytes, \(actual) are present"
        case .trailingBytes(let count):
            "the file has \(count) unexpected bytes after its payload: it is corrupt"
        case .checksumMismatch(let expected, let actual):
            "the file is corrupt: payload CRC-32 is \(crcHex(actual)), the header says \(crcHex(expected))"
        case .malformedPayload:
            "the file's payload is not a valid model message (corrupt, or written by an incompatible program)"
        case .invalidMetadata(let reason):
            "the model file's compressed metadata is corrupt: \(reason)"
        case .missingField(let field):
            "the model file lacks a required field: \(field)"
        case .unknownOp(let node):
            "node '\(node)' uses an op this compressor does not know (written by a newer version?)"
        case .unknownEncoding(let tensor):
            "tensor '\(tensor)' uses an encoding this compressor does not know (written by a newer version?)"
        case .tensorSizeMismatch(let tensor, let shape, let dtype, let expected?, let actual):
            "tensor '\(tensor)' has \(actual) bytes of \(dtype) data, its shape \(shape) needs \(expected)"
        case .tensorSizeMismatch(let tensor, let shape, let dtype, nil, let actual):
            "tensor '\(tensor)' has \(actual) bytes of \(dtype) data, its shape \(shape) is too large"
        case .invalidSparseTensor(let tensor, let detail):
            "tensor '\(tensor)' has an invalid sparse encoding: \(detail)"
        case .invalidCodebookTensor(let tensor, let detail):
            "tensor '\(tensor)' has an invalid codebook encoding: \(detail)"
        case .invalidHashedTensor(let tensor, let detail):
            "tensor '\(tensor)' has an invalid hashed encoding: \(detail)"
        case .unknownHashedTensor(let name):
            "the model's storage options list '\(name)' as a hashed tensor, but the graph has no initializer of that name"
        case .unknownSharedTensor(let name):
            "the model's storage options list '\(name)' as a shared tensor, but the graph has no initializer of that name"
        case .invalidPrecision(let tensor, let detail):
            "tensor '\(tensor)' has an invalid precision record: \(detail)"
        case .invalidShape(let context, let shape):
            "\(context) has an invalid shape \(shape): dimensions must be non-negative and fit in memory"
        case .invalidAttribute(let node, let detail):
            "node '\(node)': \(detail)"
        case .duplicateName(let name):
            "the model file defines '\(name)' more than once"
        case .exceedsMemoryBudget(let refusal):
            refusal.description
        case .unencodable(let detail):
            "cannot write the model: \(detail)"
        }
    }
}

private func crcHex(_ v: UInt32) -> String {
    let digits = String(v, radix: 16)
    return "0x" + String(repeating: "0", count: 8 - digits.count) + digits
}

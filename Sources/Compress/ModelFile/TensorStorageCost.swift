/// What storing one initializer costs in a model file: its encoding, the
/// bytes of its record, and those bytes as bits per element and per non-zero
/// element; for a model that allows Huffman coding, also the encoding and
/// bytes the tensor would take without it. What `compressor info` lists for
/// weight-shared tensors and reports list per layer.
public struct TensorStorageCost: Sendable, Equatable, Codable {
    /// The initializer's name.
    public var tensor: String
    /// Elements, counted dense.
    public var weights: Int
    /// Elements that are not exactly zero.
    public var nonZeros: Int
    /// The encoding's name (see `ModelFile.encodingName(of:named:storage:)`).
    public var encoding: String
    /// Bytes of the tensor's record: values, indices, codebook and Huffman
    /// tables, name, shape and framing.
    public var bytes: Int
    /// 8 × `bytes` / `weights`.
    public var bitsPerWeight: Double
    /// 8 × `bytes` / `nonZeros` (a tensor of zeros counts one non-zero).
    public var bitsPerNonZero: Double
    /// With Huffman coding allowed (`StorageOptions.huffman`): how the tensor
    /// would be stored, and in how many bytes, without it; nil otherwise.
    public var withoutHuffman: EncodedTensorSize?

    public init(tensor: String, weights: Int, nonZeros: Int, encoding: String, bytes: Int,
                withoutHuffman: EncodedTensorSize?) {
        self.tensor = tensor; self.weights = weights; self.nonZeros = nonZeros; self.encoding = encoding
        self.bytes = bytes; self.withoutHuffman = withoutHuffman
        bitsPerWeight = Self.bits(bytes, per: weights)
        bitsPerNonZero = Self.bits(bytes, per: nonZeros)
    }

    /// `bitsPerWeight` without Huffman coding, when it was allowed.
    public var bitsPerWeightWithoutHuffman: Double? { withoutHuffman.map { Self.bits($0.bytes, per: weights) } }
    /// `bitsPerNonZero` without Huffman coding, when it was allowed.
    public var bitsPerNonZeroWithoutHuffman: Double? { withoutHuffman.map { Self.bits($0.bytes, per: nonZeros) } }

    /// 8 × `bytes` / `count`, a count of zero taken as one.
    public static func bits(_ bytes: Int, per count: Int) -> Double { Double(bytes * 8) / Double(max(count, 1)) }
}

extension ModelFile {
    /// The storage cost of each initializer in `names` that `model` has, in
    /// the order given: what the writer would store for it (the same choice
    /// and sizes as `encodedTensorSizes(_:)`), and with
    /// `StorageOptions.huffman` also the choice with Huffman coding turned off.
    public static func storageCosts(of names: [String], in model: Model) -> [TensorStorageCost] {
        let storage = model.metadata.storage
        var plain = storage
        plain.huffman = false
        return names.compactMap { name in
            guard let tensor = model.graph.initializers[name] else { return nil }
            let size = encodedTensorSize(tensor, named: name, storage: storage)
            return TensorStorageCost(tensor: name, weights: tensor.count, nonZeros: tensor.nonZeroCount,
                                     encoding: size.encoding, bytes: size.bytes,
                                     withoutHuffman: storage.huffman
                                         ? encodedTensorSize(tensor, named: name, storage: plain) : nil)
        }
    }
}

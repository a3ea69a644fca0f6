import CModelProto
import CProtobufC

/// Turns a serialized `compressor.Model` message into a `Model`, checking
/// what protobuf cannot: required fields present, ops and encodings known,
/// shapes non-negative, data lengths matching shapes.
///
/// The unpacked C tree is owned by protobuf-c and released with
/// `__free_unpacked`; everything kept is copied into Swift values first.
enum ProtoDecoder {
    static func model(fromPayload payload: ArraySlice<UInt8>,
                      budget: MemoryBudget = .processDefault) throws(ModelFileError) -> Model {
        let unpacked = payload.withUnsafeBufferPointer { buffer in
            compressor__model__unpack(nil, buffer.count, buffer.baseAddress)
        }
        guard let unpacked else { throw .malformedPayload }
        defer { compressor__model__free_unpacked(unpacked, nil) }
        return try model(unpacked.pointee, budget: budget)
    }

    // MARK: Messages

    static func model(_ m: Compressor__Model, budget: MemoryBudget = .processDefault) throws(ModelFileError) -> Model {
        guard let format = m.format else { throw .missingField("format") }
        guard format.pointee.has_version != 0 else { throw .missingField("format: version") }
        let version = format.pointee.version
        guard version != 0 else { throw .invalidFormatVersion(0) }
        guard version <= FileHeader.currentVersion else {
            throw .newerFormat(version: version, supported: FileHeader.currentVersion)
        }
        guard let g = m.graph else { throw .missingField("graph") }
        let metadata: ModelMetadata
        if m.has_metadata_deflated != 0 {
            guard m.metadata == nil else { throw .invalidMetadata("the file holds both plain and compressed metadata") }
            metadata = try deflatedMetadata(m.metadata_deflated)
        } else {
            metadata = try m.metadata.map { p throws(ModelFileError) in try self.metadata(p.pointee) } ?? ModelMetadata()
        }
        let graph = try graph(g.pointee, hashed: metadata.storage.hashedTensors, precisions: metadata.storage.precisions,
                              budget: budget)
        for name in metadata.storage.sharedTensors where graph.initializers[name] == nil {
            throw .unknownSharedTensor(name)
        }
        for name in metadata.storage.hashedTensors.keys.sorted() where graph.initializers[name] == nil {
            throw .unknownHashedTensor(name)
        }
        for name in metadata.storage.precisions.keys.sorted() where graph.initializers[name] == nil {
            throw .invalidPrecision(tensor: name, detail: "the graph has no initializer of that name")
        }
        return Model(graph: graph, metadata: metadata)
    }

    /// Metadata larger than this when inflated is refused before it is decoded.
    static let maxMetadataBytes = 256 << 20

    /// The Metadata message a `metadata_deflated` record inflates to.
    static func deflatedMetadata(_ data: ProtobufCBinaryData) throws(ModelFileError) -> ModelMetadata {
        let inflated: [UInt8]
        switch ZlibStream.inflate(UnsafeRawBufferPointer(start: data.data, count: data.len), limit: maxMetadataBytes) {
        case .success(let bytes): inflated = bytes
        case .failure(let failure): throw .invalidMetadata(failure.reason)
        }
        let unpacked = inflated.withUnsafeBufferPointer { compressor__metadata__unpack(nil, $0.count, $0.baseAddress) }
        guard let unpacked else { throw .invalidMetadata("it inflates to bytes that are no metadata message") }
        defer { compressor__metadata__free_unpacked(unpacked, nil) }
        return try metadata(unpacked.pointee)
    }

    /// `hashed`: the storage options' hashed tensors, which every hashed record must match.
    static func graph(_ g: Compressor__Graph, hashed: [String: HashedTensor] = [:],
                      precisions: [String: TensorPrecision] = [:],
                      budget: MemoryBudget = .processDefault) throws(ModelFileError) -> Graph {
        var inputs: [GraphInput] = []
        for (i, p) in messages(g.inputs, g.n_inputs).enumerated() {
            guard let name = p.pointee.name else { throw .missingField("graph input \(i): name") }
            let n = String(cString: name)
            let shape = try dimensions(p.pointee.sample_shape, p.pointee.n_sample_shape, context: "graph input '\(n)'")
            inputs.append(GraphInput(name: n, sampleShape: shape))
        }
        var outputs: [String] = []
        for (i, s) in cStrings(g.outputs, g.n_outputs).enumerated() {
            guard let s else { throw .missingField("graph output \(i)") }
            outputs.append(s)
        }
        var nodes: [Node] = []
        nodes.reserveCapacity(g.n_nodes)
        for (i, p) in messages(g.nodes, g.n_nodes).enumerated() {
            nodes.append(try node(p.pointee, index: i))
        }
        try checkDeclaredSizes(g, budget: budget)
        var initializers: [String: Tensor] = [:]
        for (i, p) in messages(g.tensors, g.n_tensors).enumerated() {
            guard let name = p.pointee.name else { throw .missingField("tensor \(i): name") }
            let n = String(cString: name)
            guard initializers[n] == nil else { throw .duplicateName(n) }
            let stored = try tensor(p.pointee, name: n, hashed: hashed[n])
            initializers[n] = try precisions[n].map { precision throws(ModelFileError) in
                try widened(stored, precision: precision, name: n)
            } ?? stored
        }
        return Graph(inputs: inputs, outputs: outputs, nodes: nodes, initializers: initializers)
    }

    /// Throws `exceedsMemoryBudget` when the graph's tensors, at their declared
    /// shapes decoded to dense elements (8 bytes for int64, 4 otherwise: narrow
    /// precisions widen to float32), need more than `budget`; a bad shape or
    /// missing name is left to the decoding after it.
    static func checkDeclaredSizes(_ g: Compressor__Graph, budget: MemoryBudget) throws(ModelFileError) {
        var sizes: [MemoryNeed.TensorSize] = []
        for p in messages(g.tensors, g.n_tensors) {
            let t = p.pointee
            guard let name = t.name else { continue }
            // A negative or overflowing shape is the decoder's invalidShape, not a budget question.
            guard let shape = try? dimensions(t.shape, t.n_shape, context: "") else { continue }
            let width = t.encoding_case == COMPRESSOR__TENSOR__ENCODING_DENSE_INT64 ? 8 : 4
            sizes.append(MemoryNeed.TensorSize(name: String(cString: name), shape: shape, elementSize: width))
        }
        do {
            try budget.check(MemoryNeed(purpose: "loading the model's tensors", tensors: sizes))
        } catch {
            throw .exceedsMemoryBudget(error)
        }
    }

    /// The float32 tensor of `stored`, the initializer `name` recorded in
    /// `precision`: float16 or int8 elements widened (dequantized), or
    /// float32 elements (sparse or codebook encodings) checked to be
    /// representable in the precision.
    static func widened(_ stored: Tensor, precision: TensorPrecision, name: String) throws(ModelFileError) -> Tensor {
        func invalid(_ detail: String) -> ModelFileError { .invalidPrecision(tensor: name, detail: detail) }
        let values: [Float]
        switch (precision, stored.storage) {
        case (.float16, .float16(let bits)):
            values = bits.map { Float(Float16(bitPattern: $0)) }
        case (.float16, .float32(let v)):
            values = v
        case (.int8(let grid), .int8(let q)):
            if let problem = grid.problem(shape: stored.shape) { throw invalid("its int8 grid \(problem)") }
            values = grid.dequantize(q.map { Int32($0) }, shape: stored.shape)
        default:
            throw invalid("it is \(precision.name), but the tensor is stored as \(stored.dtype)")
        }
        if let problem = precision.problem(values: values, shape: stored.shape) { throw invalid("the tensor \(problem)") }
        return Tensor(shape: stored.shape, floats: values)
    }

    static func node(_ n: Compressor__Node, index: Int) throws(ModelFileError) -> Node {
        guard let cName = n.name else { throw .missingField("node \(index): name") }
        let name = String(cString: cName)
        guard let cOutput = n.output else { throw .missingField("node '\(name)': output") }
        var inputs: [String] = []
        for (i, s) in cStrings(n.inputs, n.n_inputs).enumerated() {
            guard let s else { throw .missingField("node '\(name)': input \(i)") }
            inputs.append(s)
        }
        let reader = AttributeReader(node: name)
        let op: Op
        switch n.op_case {
        case COMPRESSOR__NODE__OP_CONV2D:
            let a = try reader.message(n.conv2d, "conv2d attributes")
            op = .conv2d(Conv2d(stride: try reader.size2(a.stride, "stride"),
                                padding: try reader.padding2(a.padding, "padding"),
                                dilation: try reader.size2(a.dilation, "dilation"),
                                groups: try reader.int(a.has_groups, a.groups, "groups")))
        case COMPRESSOR__NODE__OP_LINEAR: op = .linear
        case COMPRESSOR__NODE__OP_BATCH_NORM:
            let a = try reader.message(n.batch_norm, "batch norm attributes")
            op = .batchNorm(epsilon: try reader.value(a.has_epsilon, a.epsilon, "epsilon"))
        case COMPRESSOR__NODE__OP_LAYER_NORM:
            let a = try reader.message(n.layer_norm, "layer norm attributes")
            op = .layerNorm(epsilon: try reader.value(a.has_epsilon, a.epsilon, "epsilon"))
        case COMPRESSOR__NODE__OP_RELU: op = .relu
        case COMPRESSOR__NODE__OP_RELU6: op = .relu6
        case COMPRESSOR__NODE__OP_LEAKY_RELU:
            let a = try reader.message(n.leaky_relu, "leaky relu attributes")
            op = .leakyRelu(alpha: try reader.value(a.has_alpha, a.alpha, "alpha"))
        case COMPRESSOR__NODE__OP_SIGMOID: op = .sigmoid
        case COMPRESSOR__NODE__OP_TANH: op = .tanh
        case COMPRESSOR__NODE__OP_HARD_SIGMOID:
            let a = try reader.message(n.hard_sigmoid, "hard sigmoid attributes")
            op = .hardSigmoid(alpha: try reader.value(a.has_alpha, a.alpha, "alpha"),
                              beta: try reader.value(a.has_beta, a.beta, "beta"))
        case COMPRESSOR__NODE__OP_HARD_SWISH: op = .hardSwish
        case COMPRESSOR__NODE__OP_GELU:
            let a = try reader.message(n.gelu, "gelu attributes")
            op = .gelu(tanhApproximation: try reader.value(a.has_tanh_approximation, a.tanh_approximation,
                                                           "tanh_approximation") != 0)
        case COMPRESSOR__NODE__OP_MAX_POOL:
            op = .maxPool(try reader.pool2d(n.max_pool, "max pool attributes"))
        case COMPRESSOR__NODE__OP_AVG_POOL:
            let a = try reader.message(n.avg_pool, "avg pool attributes")
            op = .avgPool(try reader.pool2d(a.pool, "pool"),
                          countIncludePad: try reader.value(a.has_count_include_pad, a.count_include_pad,
                                                            "count_include_pad") != 0)
        case COMPRESSOR__NODE__OP_GLOBAL_AVG_POOL: op = .globalAvgPool
        case COMPRESSOR__NODE__OP_FLATTEN:
            op = .flatten(axis: try reader.axis(n.flatten, "flatten attributes"))
        case COMPRESSOR__NODE__OP_RESHAPE:
            let a = try reader.message(n.reshape, "reshape attributes")
            var shape: [Int] = []
            for d in buffer(a.shape, a.n_shape) { shape.append(try reader.int(1, d, "shape")) }
            op = .reshape(shape: shape)
        case COMPRESSOR__NODE__OP_ADD: op = .add
        case COMPRESSOR__NODE__OP_SUB: op = .sub
        case COMPRESSOR__NODE__OP_MUL: op = .mul
        case COMPRESSOR__NODE__OP_DIV: op = .div
        case COMPRESSOR__NODE__OP_CONCAT:
            op = .concat(axis: try reader.axis(n.concat, "concat attributes"))
        case COMPRESSOR__NODE__OP_SOFTMAX:
            op = .softmax(axis: try reader.axis(n.softmax, "softmax attributes"))
        case COMPRESSOR__NODE__OP_SLICE:
            let a = try reader.message(n.slice, "slice attributes")
            op = .slice(axis: try reader.int(a.has_axis, a.axis, "slice axis"),
                        start: try reader.int(a.has_start, a.start, "slice start"),
                        end: try reader.int(a.has_end, a.end, "slice end"))
        case COMPRESSOR__NODE__OP_CHANNEL_PERMUTE:
            let a = try reader.message(n.channel_permute, "channel permute attributes")
            var order: [Int] = []
            for i in buffer(a.order, a.n_order) { order.append(try reader.int(1, i, "channel order")) }
            op = .channelPermute(order: order)
        case COMPRESSOR__NODE__OP_DROPOUT:
            let a = try reader.message(n.dropout, "dropout attributes")
            op = .dropout(ratio: try reader.value(a.has_ratio, a.ratio, "ratio"))
        case COMPRESSOR__NODE__OP_RESIZE:
            let a = try reader.message(n.resize, "resize attributes")
            op = .resize(Resize2d(mode: try reader.named(a.mode, "mode"),
                                  coordinates: try reader.named(a.coordinate_transformation, "coordinate_transformation"),
                                  nearestRounding: try reader.named(a.nearest_rounding, "nearest_rounding"),
                                  scaleH: try reader.value(a.has_scale_h, a.scale_h, "scale_h"),
                                  scaleW: try reader.value(a.has_scale_w, a.scale_w, "scale_w"),
                                  size: a.size == nil ? nil : try reader.size2(a.size, "size")))
        case COMPRESSOR__NODE__OP_CONV_TRANSPOSE:
            let a = try reader.message(n.conv_transpose, "conv transpose attributes")
            op = .convTranspose(ConvTranspose2d(stride: try reader.size2(a.stride, "stride"),
                                                padding: try reader.padding2(a.padding, "padding"),
                                                dilation: try reader.size2(a.dilation, "dilation"),
                                                groups: try reader.int(a.has_groups, a.groups, "groups"),
                                                outputPadding: try reader.size2(a.output_padding, "output_padding")))
        case COMPRESSOR__NODE__OP_QUANTIZE_DEQUANTIZE:
            let a = try reader.message(n.quantize_dequantize, "quantize-dequantize attributes")
            let q = ActivationQuantization(scale: try reader.value(a.has_scale, a.scale, "scale"),
                                           zeroPoint: try reader.value(a.has_zero_point, a.zero_point, "zero_point"),
                                           signed: try reader.value(a.has_signed_, a.signed_, "signed") != 0)
            if let problem = q.problem { throw .invalidAttribute(node: name, detail: problem) }
            op = .quantizeDequantize(q)
        default:
            throw .unknownOp(node: name)
        }
        return Node(name: name, op: op, inputs: inputs, output: String(cString: cOutput))
    }

    /// `hashed`: the storage options' entry for this tensor, which a hashed record must match.
    static func tensor(_ t: Compressor__Tensor, name: String, hashed: HashedTensor? = nil) throws(ModelFileError) -> Tensor {
        let shape = try dimensions(t.shape, t.n_shape, context: "tensor '\(name)'")
        let rawShape = Array(buffer(t.shape, t.n_shape))
        // dimensions() checked the product fits in Int.
        let count = shape.elementCount

        /// The encoding's bytes, checked against the shape.
        func data(_ has: protobuf_c_boolean, _ d: ProtobufCBinaryData, _ dtype: DType) throws(ModelFileError)
            -> UnsafeRawBufferPointer {
            let stored = bytes(has, d)
            let (expected, overflow) = count.multipliedReportingOverflow(by: dtype.byteWidth)
            guard !overflow, expected == stored.count else {
                throw .tensorSizeMismatch(tensor: name, shape: rawShape, dtype: dtype,
                                          expectedBytes: overflow ? nil : expected, actualBytes: stored.count)
            }
            return stored
        }
        func missing() -> ModelFileError { .missingField("tensor '\(name)': encoding message") }

        let storage: TensorStorage
        switch t.encoding_case {
        case COMPRESSOR__TENSOR__ENCODING_DENSE_FLOAT32:
            guard let d = t.dense_float32 else { throw missing() }
            storage = .float32(littleEndianValues(try data(d.pointee.has_data, d.pointee.data, .float32), count: count))
        case COMPRESSOR__TENSOR__ENCODING_DENSE_INT64:
            guard let d = t.dense_int64 else { throw missing() }
            storage = .int64(littleEndianValues(try data(d.pointee.has_data, d.pointee.data, .int64), count: count))
        case COMPRESSOR__TENSOR__ENCODING_DENSE_FLOAT16:
            guard let d = t.dense_float16 else { throw missing() }
            storage = .float16(littleEndianValues(try data(d.pointee.has_data, d.pointee.data, .float16), count: count))
        case COMPRESSOR__TENSOR__ENCODING_DENSE_INT8:
            guard let d = t.dense_int8 else { throw missing() }
            storage = .int8(littleEndianValues(try data(d.pointee.has_data, d.pointee.data, .int8), count: count))
        case COMPRESSOR__TENSOR__ENCODING_DENSE_UINT8:
            guard let d = t.dense_uint8 else { throw missing() }
            storage = .uint8(littleEndianValues(try data(d.pointee.has_data, d.pointee.data, .uint8), count: count))
        case COMPRESSOR__TENSOR__ENCODING_SPARSE_FLOAT32:
            guard let s = t.sparse_float32 else { throw missing() }
            let elements = try sparseFloat32(s.pointee, elementCount: count, tensor: name)
            // int8 entries scatter as the float values of their integers, exactly.
            storage = s.pointee.values_case == COMPRESSOR__SPARSE_FLOAT32__VALUES_VALUES_INT8
                ? .int8(elements.map { Int8($0) }) : .float32(elements)
        case COMPRESSOR__TENSOR__ENCODING_HASHED_FLOAT32:
            guard let h = t.hashed_float32 else { throw missing() }
            storage = .float32(try hashedFloat32(h.pointee, count: count, tensor: name, listed: hashed))
        case COMPRESSOR__TENSOR__ENCODING_CODEBOOK:
            guard let c = t.codebook else { throw missing() }
            try SparseFloat32Reader.checkElementCount(count, tensor: name)
            storage = .float32(try codebookBitPatterns(c.pointee, count: count, tensor: name).map { Float(bitPattern: $0) })
        default:
            throw .unknownEncoding(tensor: name)
        }
        do {
            return try Tensor(shape: shape, storage: storage)
        } catch {
            // Unreachable: shape and count were checked above.
            throw .invalidShape(context: "tensor '\(name)'", shape: rawShape)
        }
    }

    /// The elements of a `SparseFloat32` message, after checking it against
    /// the tensor's element count.
    static func sparseFloat32(_ s: Compressor__SparseFloat32, elementCount: Int,
                              tensor name: String) throws(ModelFileError) -> [Float] {
        func missing(_ field: String) -> ModelFileError { .missingField("tensor '\(name)': sparse \(field)") }
        guard s.has_index_bits != 0 else { throw missing("index_bits") }
        guard s.has_entry_count != 0 else { throw missing("entry_count") }
        let gapLengths = s.gaps_huffman.map { h in bytes(h.pointee.has_lengths, h.pointee.lengths) }
        let reader = try SparseFloat32Reader(
            tensor: name, elementCount: elementCount, indexBits: s.index_bits, entryCount: s.entry_count,
            gaps: bytes(s.has_gaps, s.gaps), gapLengths: gapLengths) { () throws(ModelFileError) in
            switch s.values_case {
            case COMPRESSOR__SPARSE_FLOAT32__VALUES_VALUES_FLOAT32:
                guard let values = s.values_float32 else { throw missing("values") }
                return .float32(bytes(values.pointee.has_data, values.pointee.data))
            case COMPRESSOR__SPARSE_FLOAT32__VALUES_VALUES_CODEBOOK:
                guard let values = s.values_codebook else { throw missing("values") }
                // The reader checked entry_count <= elementCount before asking.
                return .bitPatterns(try codebookBitPatterns(values.pointee, count: Int(s.entry_count), tensor: name))
            case COMPRESSOR__SPARSE_FLOAT32__VALUES_VALUES_INT8:
                guard let values = s.values_int8 else { throw missing("values") }
                return .int8(bytes(values.pointee.has_data, values.pointee.data))
            default:
                // A values encoding added after this build leaves the oneof unset.
                throw .unknownEncoding(tensor: name)
            }
        }
        return try reader.elements()
    }

    /// The `count` elements of a `HashedFloat32` message, after checking its
    /// seed and bucket bytes.
    static func hashedFloat32(_ h: Compressor__HashedFloat32, count: Int, tensor name: String,
                              listed: HashedTensor?) throws(ModelFileError) -> [Float] {
        guard h.has_seed != 0 else { throw .missingField("tensor '\(name)': hashed seed") }
        guard h.has_buckets != 0 else { throw .missingField("tensor '\(name)': hashed buckets") }
        let stored = bytes(h.has_buckets, h.buckets)
        guard stored.count % 4 == 0 else {
            throw .invalidHashedTensor(tensor: name, detail: "\(stored.count) bytes of float32 buckets, not a multiple of 4")
        }
        guard stored.count > 0 else { throw .invalidHashedTensor(tensor: name, detail: "no buckets") }
        guard stored.count / 4 <= max(count, 1) else {
            throw .invalidHashedTensor(tensor: name, detail: "\(stored.count / 4) buckets for \(count) elements")
        }
        let record = HashedTensor(buckets: stored.count / 4, seed: h.seed)
        // Writers hash only listed tensors, with their entry's layout.
        guard let listed else {
            throw .invalidHashedTensor(tensor: name, detail: "the storage options do not list it as hashed")
        }
        guard listed == record else {
            throw .invalidHashedTensor(tensor: name, detail: "\(record.buckets) buckets with seed \(record.seed), "
                                           + "the storage options say \(listed.buckets) with seed \(listed.seed)")
        }
        let buckets: [UInt32] = littleEndianValues(stored, count: stored.count / 4)
        let layout = HashedLayout(seed: h.seed, buckets: buckets.count, count: count)
        return layout.materialize(bitPatterns: buckets).map { Float(bitPattern: $0) }
    }

    /// The bit patterns of the `count` values of a `CodebookIndices`
    /// message, after checking its centroids, index width and stream.
    static func codebookBitPatterns(_ c: Compressor__CodebookIndices, count: Int,
                                    tensor name: String) throws(ModelFileError) -> [UInt32] {
        func invalid(_ detail: String) -> ModelFileError { .invalidCodebookTensor(tensor: name, detail: detail) }
        var centroids: [UInt32]
        switch c.centroids_case {
        case COMPRESSOR__CODEBOOK_INDICES__CENTROIDS_CENTROIDS_FLOAT32:
            guard let d = c.centroids_float32 else { throw .missingField("tensor '\(name)': codebook centroids") }
            let stored = bytes(d.pointee.has_data, d.pointee.data)
            guard stored.count % 4 == 0 else { throw invalid("\(stored.count) bytes of float32 centroids, not a multiple of 4") }
            centroids = littleEndianValues(stored, count: stored.count / 4)
        case COMPRESSOR__CODEBOOK_INDICES__CENTROIDS_CENTROIDS_FLOAT16:
            guard let d = c.centroids_float16 else { throw .missingField("tensor '\(name)': codebook centroids") }
            let stored = bytes(d.pointee.has_data, d.pointee.data)
            guard stored.count % 2 == 0 else { throw invalid("\(stored.count) bytes of float16 centroids, not a multiple of 2") }
            let halves: [UInt16] = littleEndianValues(stored, count: stored.count / 2)
            centroids = halves.map { Float(Float16(bitPattern: $0)).bitPattern }
        default:
            // A centroid type added after this build leaves the oneof unset.
            throw .unknownEncoding(tensor: name)
        }
        let zeroCode = c.has_zero_code != 0 && c.zero_code != 0
        let codeCount = centroids.count + (zeroCode ? 1 : 0)
        guard codeCount <= StoredCodebook.maxCodes else {
            throw invalid("\(codeCount) codes, more than \(StoredCodebook.maxCodes)")
        }
        let code: HuffmanCode?
        let width: Int?
        if let table = c.indices_huffman {
            do {
                code = try SymbolStreamReader.code(lengths: bytes(table.pointee.has_lengths, table.pointee.lengths),
                                                   alphabet: codeCount, "indices")
            } catch {
                throw invalid(error.detail)
            }
            width = nil
        } else {
            guard c.has_index_bits != 0 else { throw .missingField("tensor '\(name)': codebook index_bits") }
            let bits = c.index_bits
            guard bits >= 1, bits <= 8 else { throw invalid("index_bits is \(bits), not in 1...8") }
            guard codeCount <= 1 << Int(bits) else { throw invalid("\(bits)-bit indices cannot address \(codeCount) codes") }
            code = nil
            width = Int(bits)
        }
        if zeroCode { centroids.insert(0, at: 0) }
        let stream = SymbolStreamReader(count: count, alphabet: codeCount, data: bytes(c.has_indices, c.indices),
                                        width: width, code: code)
        do {
            return try stream.symbols("indices", one: "index").map { centroids[$0] }
        } catch {
            throw invalid(error.detail)
        }
    }

    static func metadata(_ m: Compressor__Metadata) throws(ModelFileError) -> ModelMetadata {
        var metadata = ModelMetadata()
        metadata.architecture = m.architecture.map { String(cString: $0) }
        if let n = m.normalization {
            metadata.normalization = Normalization(mean: Array(buffer(n.pointee.mean, n.pointee.n_mean)),
                                                   std: Array(buffer(n.pointee.std, n.pointee.n_std)))
        }
        for (i, s) in cStrings(m.class_names, m.n_class_names).enumerated() {
            guard let s else { throw .missingField("class name \(i)") }
            metadata.classNames.append(s)
        }
        for (i, p) in messages(m.history, m.n_history).enumerated() {
            let h = p.pointee
            guard let pass = h.pass else { throw .missingField("history entry \(i): pass") }
            var entry = HistoryEntry(pass: String(cString: pass))
            for q in messages(h.parameters, h.n_parameters) {
                guard let k = q.pointee.key else { throw .missingField("history entry \(i): parameter name") }
                let key = String(cString: k)
                guard let v = q.pointee.value else { throw .missingField("history entry \(i): parameter '\(key)'") }
                guard entry.parameters[key] == nil else { throw .duplicateName("history entry \(i) parameter '\(key)'") }
                entry.parameters[key] = String(cString: v)
            }
            if h.has_seed != 0 { entry.seed = h.seed }
            for q in messages(h.metrics, h.n_metrics) {
                guard let k = q.pointee.key else { throw .missingField("history entry \(i): metric name") }
                let key = String(cString: k)
                guard q.pointee.has_value != 0 else { throw .missingField("history entry \(i): metric '\(key)'") }
                guard entry.metrics[key] == nil else { throw .duplicateName("history entry \(i) metric '\(key)'") }
                entry.metrics[key] = q.pointee.value
            }
            for q in messages(h.attachments, h.n_attachments) {
                guard let n = q.pointee.name else { throw .missingField("history entry \(i): attachment name") }
                let name = String(cString: n)
                guard let t = q.pointee.text else { throw .missingField("history entry \(i): attachment '\(name)'") }
                guard entry.attachments[name] == nil else { throw .duplicateName("history entry \(i) attachment '\(name)'") }
                entry.attachments[name] = String(cString: t)
            }
            metadata.history.append(entry)
        }
        if let storage = m.storage {
            var shared: [String] = []
            for (i, s) in cStrings(storage.pointee.shared_tensors, storage.pointee.n_shared_tensors).enumerated() {
                guard let s else { throw .missingField("storage options: shared tensor \(i)") }
                guard !shared.contains(s) else { throw .duplicateName("shared tensor '\(s)'") }
                shared.append(s)
            }
            var hashed: [String: HashedTensor] = [:]
            for (i, p) in messages(storage.pointee.hashed_tensors, storage.pointee.n_hashed_tensors).enumerated() {
                let h = p.pointee
                guard let n = h.name else { throw .missingField("storage options: hashed tensor \(i): name") }
                let name = String(cString: n)
                guard hashed[name] == nil else { throw .duplicateName("hashed tensor '\(name)'") }
                guard h.has_buckets != 0 else { throw .missingField("storage options: hashed tensor '\(name)': buckets") }
                guard h.has_seed != 0 else { throw .missingField("storage options: hashed tensor '\(name)': seed") }
                guard h.buckets >= 1, let buckets = Int(exactly: h.buckets) else {
                    throw .invalidHashedTensor(tensor: name, detail: "the storage options give it \(h.buckets) buckets")
                }
                hashed[name] = HashedTensor(buckets: buckets, seed: h.seed)
            }
            var precisions: [String: TensorPrecision] = [:]
            for (i, p) in messages(storage.pointee.precisions, storage.pointee.n_precisions).enumerated() {
                guard let t = p.pointee.tensor else { throw .missingField("storage options: precision record \(i): tensor") }
                let name = String(cString: t)
                guard precisions[name] == nil else { throw .duplicateName("precision record of '\(name)'") }
                precisions[name] = try precision(p.pointee, tensor: name)
            }
            metadata.storage = StorageOptions(sharedTensors: shared,
                                              huffman: storage.pointee.has_huffman != 0 && storage.pointee.huffman != 0,
                                              hashedTensors: hashed, precisions: precisions)
        }
        return metadata
    }

    static func precision(_ p: Compressor__TensorPrecision, tensor name: String) throws(ModelFileError) -> TensorPrecision {
        func invalid(_ detail: String) -> ModelFileError { .invalidPrecision(tensor: name, detail: detail) }
        switch p.format_case {
        case COMPRESSOR__TENSOR_PRECISION__FORMAT_FLOAT16:
            return .float16
        case COMPRESSOR__TENSOR_PRECISION__FORMAT_INT8:
            guard let q = p.int8 else { throw invalid("its int8 parameters are missing") }
            guard q.pointee.has_qmin != 0, q.pointee.has_qmax != 0 else { throw invalid("its integer range is missing") }
            var axis: Int?
            if q.pointee.has_axis != 0 {
                guard let a = Int(exactly: q.pointee.axis), a >= 0 else { throw invalid("its axis \(q.pointee.axis) is negative") }
                axis = a
            }
            return .int8(QuantizationGrid(axis: axis, scales: Array(buffer(q.pointee.scales, q.pointee.n_scales)),
                                          zeroPoints: Array(buffer(q.pointee.zero_points, q.pointee.n_zero_points)),
                                          qmin: q.pointee.qmin, qmax: q.pointee.qmax))
        default:
            throw invalid("it uses a format this compressor does not know (written by a newer version?)")
        }
    }

    // MARK: Pieces

    /// A shape whose dimensions are all non-negative and whose element count fits in Int.
    static func dimensions(_ p: UnsafeMutablePointer<Int64>?, _ n: Int, context: String) throws(ModelFileError) -> [Int] {
        let raw = buffer(p, n)
        var shape: [Int] = []
        shape.reserveCapacity(n)
        var count = 1
        for d in raw {
            guard d >= 0, let dim = Int(exactly: d) else { throw .invalidShape(context: context, shape: Array(raw)) }
            let (product, overflow) = count.multipliedReportingOverflow(by: dim)
            guard !overflow else { throw .invalidShape(context: context, shape: Array(raw)) }
            count = product
            shape.append(dim)
        }
        return shape
    }
}

/// Reads one node's attribute messages, naming the node and field when one is absent.
private struct AttributeReader {
    let node: String

    func missing(_ field: String) -> ModelFileError { .missingField("node '\(node)': \(field)") }

    func message<T>(_ p: UnsafeMutablePointer<T>?, _ field: String) throws(ModelFileError) -> T {
        guard let p else { throw missing(field) }
        return p.pointee
    }

    func value<T>(_ has: protobuf_c_boolean, _ v: T, _ field: String) throws(ModelFileError) -> T {
        guard has != 0 else { throw missing(field) }
        return v
    }

    func int(_ has: protobuf_c_boolean, _ v: Int64, _ field: String) throws(ModelFileError) -> Int {
        guard has != 0 else { throw missing(field) }
        guard let i = Int(exactly: v) else { throw .invalidAttribute(node: node, detail: "\(field) \(v) does not fit in Int") }
        return i
    }

    func size2(_ p: UnsafeMutablePointer<Compressor__Size2>?, _ field: String) throws(ModelFileError) -> Size2 {
        let s = try message(p, field)
        return Size2(try int(s.has_h, s.h, "\(field).h"), try int(s.has_w, s.w, "\(field).w"))
    }

    func padding2(_ p: UnsafeMutablePointer<Compressor__Padding2>?, _ field: String) throws(ModelFileError) -> Padding2 {
        let s = try message(p, field)
        return Padding2(top: try int(s.has_top, s.top, "\(field).top"), left: try int(s.has_left, s.left, "\(field).left"),
                        bottom: try int(s.has_bottom, s.bottom, "\(field).bottom"),
                        right: try int(s.has_right, s.right, "\(field).right"))
    }

    func pool2d(_ p: UnsafeMutablePointer<Compressor__Pool2dAttributes>?, _ field: String) throws(ModelFileError) -> Pool2d {
        let a = try message(p, field)
        return Pool2d(kernel: try size2(a.kernel, "\(field).kernel"), stride: try size2(a.stride, "\(field).stride"),
                      padding: try padding2(a.padding, "\(field).padding"),
                      dilation: try size2(a.dilation, "\(field).dilation"),
                      ceilMode: try value(a.has_ceil_mode, a.ceil_mode, "\(field).ceil_mode") != 0)
    }

    /// The case of `E` whose raw value is the string at `p`.
    func named<E: RawRepresentable & CaseIterable>(_ p: UnsafeMutablePointer<CChar>?, _ field: String) throws(ModelFileError) -> E
        where E.RawValue == String {
        guard let p else { throw missing(field) }
        let text = String(cString: p)
        guard let value = E(rawValue: text) else {
            throw .invalidAttribute(node: node, detail: "\(field) '\(text)' is not one of \(E.allCases.map(\.rawValue))")
        }
        return value
    }

    func axis(_ p: UnsafeMutablePointer<Compressor__AxisAttributes>?, _ field: String) throws(ModelFileError) -> Int {
        let a = try message(p, field)
        return try int(a.has_axis, a.axis, "\(field).axis")
    }
}

/// The `n` elements at `p` (protobuf-c leaves `p` null when `n` is 0).
private func buffer<T>(_ p: UnsafeMutablePointer<T>?, _ n: Int) -> UnsafeBufferPointer<T> {
    UnsafeBufferPointer(start: n > 0 ? p : nil, count: p == nil ? 0 : n)
}

/// The bytes of an optional bytes field; empty when absent.
private func bytes(_ has: protobuf_c_boolean, _ d: ProtobufCBinaryData) -> UnsafeRawBufferPointer {
    has != 0 ? UnsafeRawBufferPointer(start: d.data, count: d.len) : UnsafeRawBufferPointer(start: nil, count: 0)
}

/// The messages of a repeated message field.
private func messages<T>(_ p: UnsafeMutablePointer<UnsafeMutablePointer<T>?>?, _ n: Int) -> [UnsafeMutablePointer<T>] {
    buffer(p, n).compactMap { $0 }
}

/// The strings of a repeated string field; nil for a null entry.
private func cStrings(_ p: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?, _ n: Int) -> [String?] {
    buffer(p, n).map { $0.map { String(cString: $0) } }
}

/// `count` values decoded from little-endian bytes (whose length the caller checked).
private func littleEndianValues<T>(_ bytes: UnsafeRawBufferPointer, count: Int) -> [T] {
    let width = MemoryLayout<T>.size
    precondition(bytes.count == count * width)
    return [T](unsafeUninitializedCapacity: count) { out, initialized in
        if count > 0 {
            UnsafeMutableRawBufferPointer(out).copyMemory(from: bytes)
            #if _endian(big)
            let raw = UnsafeMutableRawBufferPointer(out)
            if width > 1 {
                for start in stride(from: 0, to: raw.count, by: width) {
                    var lo = start, hi = start + width - 1
                    while lo < hi { raw.swapAt(lo, hi); lo += 1; hi -= 1 }
                }
            }
            #endif
        }
        initialized = count
    }
}

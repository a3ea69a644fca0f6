import CModelProto
import CProtobufC

/// Builds the protobuf-c message tree of a `Model` in an arena and packs it.
///
/// Canonical order makes the bytes a function of the model alone: tensors are
/// sorted by name, history parameters and metrics by key and attachments by
/// name, nodes keep the graph's order, and no field depends on time or the host.
struct ProtoEncoder {
    let arena = ProtoArena()

    /// The serialized `compressor.Model` message of `model`.
    static func payload(of model: Model) throws(ModelFileError) -> [UInt8] {
        let encoder = ProtoEncoder()
        let message = try encoder.model(model)
        let size = compressor__model__get_packed_size(message)
        // protobuf-c writes nested lengths as 32-bit varints.
        guard size < Int(UInt32.max) else {
            throw .unencodable("the model needs \(size) bytes, more than the format's 4 GiB limit")
        }
        let bytes = [UInt8](unsafeUninitializedCapacity: size) { buffer, count in
            count = compressor__model__pack(message, buffer.baseAddress)
        }
        // Keeps the arena, and the tree in it, alive until packing is done.
        withExtendedLifetime(encoder) {}
        return bytes
    }

    /// Bytes the tensor `name` occupies in the payload: its `Tensor` message
    /// with the field key and length prefix that introduce it in `Graph`.
    static func encodedSize(ofTensor tensor: Tensor, named name: String, encoding: TensorFileEncoding? = nil,
                            storage: StorageOptions = StorageOptions()) throws(ModelFileError) -> Int {
        let encoder = ProtoEncoder()
        let message = try encoder.tensor(tensor, named: name, encoding: encoding, storage: storage)
        let size = compressor__tensor__get_packed_size(message)
        withExtendedLifetime(encoder) {}
        return 1 + varintSize(UInt64(size)) + size
    }

    // MARK: Messages

    func model(_ model: Model) throws(ModelFileError) -> UnsafeMutablePointer<Compressor__Model> {
        let m = arena.message(compressor__model__init)
        let format = arena.message(compressor__format_info__init)
        format.pointee.has_version = 1
        format.pointee.version = FileHeader.currentVersion
        format.pointee.producer = arena.string("compressor")
        m.pointee.format = format
        for name in model.metadata.storage.sharedTensors where model.graph.initializers[name] == nil {
            throw .unencodable("the storage options list '\(name)' as a shared tensor, but the graph has no initializer of that name")
        }
        for (name, hashed) in model.metadata.storage.hashedTensors {
            guard model.graph.initializers[name] != nil else {
                throw .unencodable("the storage options list '\(name)' as a hashed tensor, but the graph has no initializer of that name")
            }
            guard hashed.buckets >= 1 else { throw .unencodable("hashed tensor '\(name)' has \(hashed.buckets) buckets") }
        }
        for name in model.metadata.storage.precisions.keys.sorted() where model.graph.initializers[name]?.dtype != .float32 {
            throw .unencodable("the storage options record a precision for '\(name)', but the graph has no float32 initializer of that name")
        }
        m.pointee.graph = try graph(model.graph, storage: model.metadata.storage)
        let meta = try metadata(model.metadata)
        // The metadata (mostly the history's text) as one zlib stream where
        // that is smaller, as it practically always is.
        let plain = [UInt8](unsafeUninitializedCapacity: compressor__metadata__get_packed_size(meta)) { buffer, count in
            count = compressor__metadata__pack(meta, buffer.baseAddress)
        }
        let deflated = ZlibStream.compress(plain)
        if deflated.count < plain.count {
            m.pointee.has_metadata_deflated = 1
            m.pointee.metadata_deflated = arena.bytes(count: deflated.count) { $0.copyBytes(from: deflated) }
        } else {
            m.pointee.metadata = meta
        }
        return m
    }

    func graph(_ graph: Graph, storage: StorageOptions = StorageOptions()) throws(ModelFileError)
        -> UnsafeMutablePointer<Compressor__Graph> {
        let g = arena.message(compressor__graph__init)
        var inputs: [UnsafeMutablePointer<Compressor__GraphInput>] = []
        for input in graph.inputs {
            let i = arena.message(compressor__graph_input__init)
            i.pointee.name = try string(input.name, "graph input name")
            i.pointee.n_sample_shape = input.sampleShape.count
            i.pointee.sample_shape = int64s(input.sampleShape)
            inputs.append(i)
        }
        g.pointee.n_inputs = inputs.count
        g.pointee.inputs = arena.pointers(inputs)
        g.pointee.n_outputs = graph.outputs.count
        g.pointee.outputs = try strings(graph.outputs, "graph output name")

        var nodes: [UnsafeMutablePointer<Compressor__Node>] = []
        for n in graph.nodes { nodes.append(try node(n)) }
        g.pointee.n_nodes = nodes.count
        g.pointee.nodes = arena.pointers(nodes)

        var tensors: [UnsafeMutablePointer<Compressor__Tensor>] = []
        for name in graph.initializerNames {
            tensors.append(try tensor(graph.initializers[name]!, named: name, storage: storage))
        }
        g.pointee.n_tensors = tensors.count
        g.pointee.tensors = arena.pointers(tensors)
        return g
    }

    func node(_ node: Node) throws(ModelFileError) -> UnsafeMutablePointer<Compressor__Node> {
        let n = arena.message(compressor__node__init)
        n.pointee.name = try string(node.name, "node name")
        n.pointee.n_inputs = node.inputs.count
        n.pointee.inputs = try strings(node.inputs, "input name of node '\(node.name)'")
        n.pointee.output = try string(node.output, "output name of node '\(node.name)'")
        switch node.op {
        case .conv2d(let c):
            let a = arena.message(compressor__conv2d_attributes__init)
            a.pointee.stride = size2(c.stride)
            a.pointee.padding = padding2(c.padding)
            a.pointee.dilation = size2(c.dilation)
            a.pointee.has_groups = 1
            a.pointee.groups = Int64(c.groups)
            n.pointee.op_case = COMPRESSOR__NODE__OP_CONV2D
            n.pointee.conv2d = a
        case .linear:
            n.pointee.op_case = COMPRESSOR__NODE__OP_LINEAR
            n.pointee.linear = noAttributes()
        case .batchNorm(let epsilon):
            let a = arena.message(compressor__batch_norm_attributes__init)
            a.pointee.has_epsilon = 1
            a.pointee.epsilon = epsilon
            n.pointee.op_case = COMPRESSOR__NODE__OP_BATCH_NORM
            n.pointee.batch_norm = a
        case .layerNorm(let epsilon):
            let a = arena.message(compressor__layer_norm_attributes__init)
            a.pointee.has_epsilon = 1
            a.pointee.epsilon = epsilon
            n.pointee.op_case = COMPRESSOR__NODE__OP_LAYER_NORM
            n.pointee.layer_norm = a
        case .relu:
            n.pointee.op_case = COMPRESSOR__NODE__OP_RELU
            n.pointee.relu = noAttributes()
        case .relu6:
            n.pointee.op_case = COMPRESSOR__NODE__OP_RELU6
            n.pointee.relu6 = noAttributes()
        case .leakyRelu(let alpha):
            let a = arena.message(compressor__leaky_relu_attributes__init)
            a.pointee.has_alpha = 1
            a.pointee.alpha = alpha
            n.pointee.op_case = COMPRESSOR__NODE__OP_LEAKY_RELU
            n.pointee.leaky_relu = a
        case .sigmoid:
            n.pointee.op_case = COMPRESSOR__NODE__OP_SIGMOID
            n.pointee.sigmoid = noAttributes()
        case .tanh:
            n.pointee.op_case = COMPRESSOR__NODE__OP_TANH
            n.pointee.tanh = noAttributes()
        case .hardSigmoid(let alpha, let beta):
            let a = arena.message(compressor__hard_sigmoid_attributes__init)
            a.pointee.has_alpha = 1
            a.pointee.alpha = alpha
            a.pointee.has_beta = 1
            a.pointee.beta = beta
            n.pointee.op_case = COMPRESSOR__NODE__OP_HARD_SIGMOID
            n.pointee.hard_sigmoid = a
        case .hardSwish:
            n.pointee.op_case = COMPRESSOR__NODE__OP_HARD_SWISH
            n.pointee.hard_swish = noAttributes()
        case .gelu(let tanhApproximation):
            let a = arena.message(compressor__gelu_attributes__init)
            a.pointee.has_tanh_approximation = 1
            a.pointee.tanh_approximation = tanhApproximation ? 1 : 0
            n.pointee.op_case = COMPRESSOR__NODE__OP_GELU
            n.pointee.gelu = a
        case .maxPool(let p):
            n.pointee.op_case = COMPRESSOR__NODE__OP_MAX_POOL
            n.pointee.max_pool = pool2d(p)
        case .avgPool(let p, let countIncludePad):
            let a = arena.message(compressor__avg_pool_attributes__init)
            a.pointee.pool = pool2d(p)
            a.pointee.has_count_include_pad = 1
            a.pointee.count_include_pad = countIncludePad ? 1 : 0
            n.pointee.op_case = COMPRESSOR__NODE__OP_AVG_POOL
            n.pointee.avg_pool = a
        case .globalAvgPool:
            n.pointee.op_case = COMPRESSOR__NODE__OP_GLOBAL_AVG_POOL
            n.pointee.global_avg_pool = noAttributes()
        case .flatten(let axis):
            n.pointee.op_case = COMPRESSOR__NODE__OP_FLATTEN
            n.pointee.flatten = axisAttributes(axis)
        case .reshape(let shape):
            let a = arena.message(compressor__reshape_attributes__init)
            a.pointee.n_shape = shape.count
            a.pointee.shape = int64s(shape)
            n.pointee.op_case = COMPRESSOR__NODE__OP_RESHAPE
            n.pointee.reshape = a
        case .add:
            n.pointee.op_case = COMPRESSOR__NODE__OP_ADD
            n.pointee.add = noAttributes()
        case .sub:
            n.pointee.op_case = COMPRESSOR__NODE__OP_SUB
            n.pointee.sub = noAttributes()
        case .mul:
            n.pointee.op_case = COMPRESSOR__NODE__OP_MUL
            n.pointee.mul = noAttributes()
        case .div:
            n.pointee.op_case = COMPRESSOR__NODE__OP_DIV
            n.pointee.div = noAttributes()
        case .concat(let axis):
            n.pointee.op_case = COMPRESSOR__NODE__OP_CONCAT
            n.pointee.concat = axisAttributes(axis)
        case .softmax(let axis):
            n.pointee.op_case = COMPRESSOR__NODE__OP_SOFTMAX
            n.pointee.softmax = axisAttributes(axis)
        case .slice(let axis, let start, let end):
            let a = arena.message(compressor__slice_attributes__init)
            (a.pointee.has_axis, a.pointee.axis) = (1, Int64(axis))
            (a.pointee.has_start, a.pointee.start) = (1, Int64(start))
            (a.pointee.has_end, a.pointee.end) = (1, Int64(end))
            n.pointee.op_case = COMPRESSOR__NODE__OP_SLICE
            n.pointee.slice = a
        case .channelPermute(let order):
            let a = arena.message(compressor__channel_permute_attributes__init)
            a.pointee.n_order = order.count
            a.pointee.order = int64s(order)
            n.pointee.op_case = COMPRESSOR__NODE__OP_CHANNEL_PERMUTE
            n.pointee.channel_permute = a
        case .dropout(let ratio):
            let a = arena.message(compressor__dropout_attributes__init)
            a.pointee.has_ratio = 1
            a.pointee.ratio = ratio
            n.pointee.op_case = COMPRESSOR__NODE__OP_DROPOUT
            n.pointee.dropout = a
        case .resize(let r):
            let a = arena.message(compressor__resize_attributes__init)
            a.pointee.mode = try string(r.mode.rawValue, "resize mode")
            a.pointee.coordinate_transformation = try string(r.coordinates.rawValue, "resize coordinate transformation")
            a.pointee.nearest_rounding = try string(r.nearestRounding.rawValue, "resize nearest rounding")
            a.pointee.has_scale_h = 1
            a.pointee.scale_h = r.scaleH
            a.pointee.has_scale_w = 1
            a.pointee.scale_w = r.scaleW
            if let size = r.size { a.pointee.size = size2(size) }
            n.pointee.op_case = COMPRESSOR__NODE__OP_RESIZE
            n.pointee.resize = a
        case .convTranspose(let c):
            let a = arena.message(compressor__conv_transpose_attributes__init)
            a.pointee.stride = size2(c.stride)
            a.pointee.padding = padding2(c.padding)
            a.pointee.dilation = size2(c.dilation)
            a.pointee.has_groups = 1
            a.pointee.groups = Int64(c.groups)
            a.pointee.output_padding = size2(c.outputPadding)
            n.pointee.op_case = COMPRESSOR__NODE__OP_CONV_TRANSPOSE
            n.pointee.conv_transpose = a
        case .quantizeDequantize(let q):
            let a = arena.message(compressor__quantize_dequantize_attributes__init)
            a.pointee.has_scale = 1
            a.pointee.scale = q.scale
            a.pointee.has_zero_point = 1
            a.pointee.zero_point = q.zeroPoint
            a.pointee.has_signed_ = 1
            a.pointee.signed_ = q.signed ? 1 : 0
            n.pointee.op_case = COMPRESSOR__NODE__OP_QUANTIZE_DEQUANTIZE
            n.pointee.quantize_dequantize = a
        }
        return n
    }

    /// The `Tensor` message of `tensor`, in `encoding` or else the one the
    /// writer chooses for it under `storage` (`TensorFileEncoding(choosingFor:named:storage:)`).
    func tensor(_ tensor: Tensor, named name: String, encoding: TensorFileEncoding? = nil,
                storage: StorageOptions = StorageOptions()) throws(ModelFileError)
        -> UnsafeMutablePointer<Compressor__Tensor> {
        guard tensor.denseByteCount < Int(UInt32.max) else {
            throw .unencodable("tensor '\(name)' has \(tensor.denseByteCount) bytes, more than the format's 4 GiB limit")
        }
        let t = arena.message(compressor__tensor__init)
        t.pointee.name = try string(name, "tensor name")
        t.pointee.n_shape = tensor.shape.count
        t.pointee.shape = int64s(tensor.shape)
        switch tensor.storage {
        case .float32(let values):
            switch encoding ?? TensorFileEncoding(choosingFor: tensor, named: name, storage: storage) {
            case .sparseFloat32(let layout):
                let (gaps, bitPatterns) = values.withUnsafeBufferPointer { layout.entries($0) }
                let s = sparseFloat32(layout, gaps: gaps)
                let d = arena.message(compressor__dense_float32__init)
                d.pointee.has_data = 1
                d.pointee.data = littleEndianBytes(bitPatterns)
                s.pointee.values_case = COMPRESSOR__SPARSE_FLOAT32__VALUES_VALUES_FLOAT32
                s.pointee.values_float32 = d
                t.pointee.encoding_case = COMPRESSOR__TENSOR__ENCODING_SPARSE_FLOAT32
                t.pointee.sparse_float32 = s
            case .sparseInt8(let layout, let grid):
                let precision = TensorPrecision.int8(grid)
                if let problem = precision.problem(values: values, shape: tensor.shape) {
                    throw .unencodable("tensor '\(name)' is recorded as \(precision.name) but \(problem); quantize after the passes that change weights")
                }
                // With zero points 0 the integer is 0 exactly where the value is +0.0, so the
                // integers (as floats) have the values' entries.
                let integers = grid.quantize(values, shape: tensor.shape).map(Float.init)
                let (gaps, bitPatterns) = integers.withUnsafeBufferPointer { layout.entries($0) }
                let s = sparseFloat32(layout, gaps: gaps)
                let d = arena.message(compressor__dense_int8__init)
                d.pointee.has_data = 1
                d.pointee.data = littleEndianBytes(bitPatterns.map { Int8(Float(bitPattern: $0)) })
                s.pointee.values_case = COMPRESSOR__SPARSE_FLOAT32__VALUES_VALUES_INT8
                s.pointee.values_int8 = d
                t.pointee.encoding_case = COMPRESSOR__TENSOR__ENCODING_SPARSE_FLOAT32
                t.pointee.sparse_float32 = s
            case .sparseCodebook(let layout, let indices):
                let (gaps, bitPatterns) = values.withUnsafeBufferPointer { layout.entries($0) }
                let s = sparseFloat32(layout, gaps: gaps)
                s.pointee.values_case = COMPRESSOR__SPARSE_FLOAT32__VALUES_VALUES_CODEBOOK
                s.pointee.values_codebook = codebookIndices(indices, bitPatterns: bitPatterns)
                t.pointee.encoding_case = COMPRESSOR__TENSOR__ENCODING_SPARSE_FLOAT32
                t.pointee.sparse_float32 = s
            case .hashed(let layout, let buckets):
                let h = arena.message(compressor__hashed_float32__init)
                h.pointee.has_seed = 1
                h.pointee.seed = layout.seed
                h.pointee.has_buckets = 1
                h.pointee.buckets = littleEndianBytes(buckets)
                t.pointee.encoding_case = COMPRESSOR__TENSOR__ENCODING_HASHED_FLOAT32
                t.pointee.hashed_float32 = h
            case .codebook(let indices):
                t.pointee.encoding_case = COMPRESSOR__TENSOR__ENCODING_CODEBOOK
                t.pointee.codebook = codebookIndices(indices, bitPatterns: values.map(\.bitPattern))
            case .dense:
                let d = arena.message(compressor__dense_float32__init)
                d.pointee.has_data = 1
                d.pointee.data = littleEndianBytes(values)
                t.pointee.encoding_case = COMPRESSOR__TENSOR__ENCODING_DENSE_FLOAT32
                t.pointee.dense_float32 = d
            case .denseFloat16, .denseInt8:
                try quantizedTensor(t, values: values, shape: tensor.shape, named: name,
                                    precision: storage.precisions[name])
            }
        case .int64(let values):
            let d = arena.message(compressor__dense_int64__init)
            d.pointee.has_data = 1
            d.pointee.data = littleEndianBytes(values)
            t.pointee.encoding_case = COMPRESSOR__TENSOR__ENCODING_DENSE_INT64
            t.pointee.dense_int64 = d
        case .float16(let values):
            let d = arena.message(compressor__dense_float16__init)
            d.pointee.has_data = 1
            d.pointee.data = littleEndianBytes(values)
            t.pointee.encoding_case = COMPRESSOR__TENSOR__ENCODING_DENSE_FLOAT16
            t.pointee.dense_float16 = d
        case .int8(let values):
            let d = arena.message(compressor__dense_int8__init)
            d.pointee.has_data = 1
            d.pointee.data = littleEndianBytes(values)
            t.pointee.encoding_case = COMPRESSOR__TENSOR__ENCODING_DENSE_INT8
            t.pointee.dense_int8 = d
        case .uint8(let values):
            let d = arena.message(compressor__dense_uint8__init)
            d.pointee.has_data = 1
            d.pointee.data = littleEndianBytes(values)
            t.pointee.encoding_case = COMPRESSOR__TENSOR__ENCODING_DENSE_UINT8
            t.pointee.dense_uint8 = d
        }
        return t
    }

    /// Fills `t` with `values` stored in `precision` (DenseFloat16 or
    /// DenseInt8), after checking they are exactly representable in it.
    func quantizedTensor(_ t: UnsafeMutablePointer<Compressor__Tensor>, values: [Float], shape: [Int], named name: String,
                         precision: TensorPrecision?) throws(ModelFileError) {
        guard let precision else { throw .unencodable("tensor '\(name)' has no precision record") }
        if let problem = precision.problem(values: values, shape: shape) {
            throw .unencodable("tensor '\(name)' is recorded as \(precision.name) but \(problem); quantize after the passes that change weights")
        }
        switch precision {
        case .float16:
            let d = arena.message(compressor__dense_float16__init)
            d.pointee.has_data = 1
            d.pointee.data = littleEndianBytes(values.map { Float16($0).bitPattern })
            t.pointee.encoding_case = COMPRESSOR__TENSOR__ENCODING_DENSE_FLOAT16
            t.pointee.dense_float16 = d
        case .int8(let grid):
            let d = arena.message(compressor__dense_int8__init)
            d.pointee.has_data = 1
            d.pointee.data = littleEndianBytes(grid.quantize(values, shape: shape).map { Int8($0) })
            t.pointee.encoding_case = COMPRESSOR__TENSOR__ENCODING_DENSE_INT8
            t.pointee.dense_int8 = d
        }
    }

    /// The `SparseFloat32` message of `gaps` in `layout`, without its values.
    func sparseFloat32(_ layout: SparseFloat32Layout, gaps: [Int]) -> UnsafeMutablePointer<Compressor__SparseFloat32> {
        let s = arena.message(compressor__sparse_float32__init)
        s.pointee.has_index_bits = 1
        s.pointee.index_bits = UInt32(layout.indexBits)
        s.pointee.has_entry_count = 1
        s.pointee.entry_count = UInt64(layout.entryCount)
        s.pointee.has_gaps = 1
        s.pointee.gaps = byteArray(layout.gapBytes(gaps))
        if case .huffman(let code, _) = layout.gapCoding { s.pointee.gaps_huffman = huffmanTable(code) }
        return s
    }

    /// The `CodebookIndices` message of values with `bitPatterns` in `layout`.
    func codebookIndices(_ layout: CodebookLayout, bitPatterns: [UInt32]) -> UnsafeMutablePointer<Compressor__CodebookIndices> {
        let c = arena.message(compressor__codebook_indices__init)
        if layout.float16 {
            let d = arena.message(compressor__dense_float16__init)
            d.pointee.has_data = 1
            d.pointee.data = littleEndianBytes(layout.centroids.map { Float16(Float(bitPattern: $0)).bitPattern })
            c.pointee.centroids_case = COMPRESSOR__CODEBOOK_INDICES__CENTROIDS_CENTROIDS_FLOAT16
            c.pointee.centroids_float16 = d
        } else {
            let d = arena.message(compressor__dense_float32__init)
            d.pointee.has_data = 1
            d.pointee.data = littleEndianBytes(layout.centroids)
            c.pointee.centroids_case = COMPRESSOR__CODEBOOK_INDICES__CENTROIDS_CENTROIDS_FLOAT32
            c.pointee.centroids_float32 = d
        }
        if layout.zeroCode {
            c.pointee.has_zero_code = 1
            c.pointee.zero_code = 1
        }
        let codes = StoredCodebook.codes(of: layout.centroids, zeroCode: layout.zeroCode)
        let symbols = bitPatterns.map { codes[$0]! }
        if case .huffman(let code, _) = layout.indexCoding {
            c.pointee.indices_huffman = huffmanTable(code)
        } else {
            c.pointee.has_index_bits = 1
            c.pointee.index_bits = UInt32(layout.indexBits)
        }
        c.pointee.has_indices = 1
        c.pointee.indices = byteArray(layout.indexBytes(symbols))
        return c
    }

    func huffmanTable(_ code: HuffmanCode) -> UnsafeMutablePointer<Compressor__HuffmanTable> {
        let h = arena.message(compressor__huffman_table__init)
        h.pointee.has_lengths = 1
        h.pointee.lengths = byteArray(code.lengths)
        return h
    }

    func metadata(_ metadata: ModelMetadata) throws(ModelFileError) -> UnsafeMutablePointer<Compressor__Metadata> {
        let m = arena.message(compressor__metadata__init)
        if let architecture = metadata.architecture {
            m.pointee.architecture = try string(architecture, "architecture name")
        }
        if let normalization = metadata.normalization {
            let n = arena.message(compressor__normalization__init)
            n.pointee.n_mean = normalization.mean.count
            n.pointee.mean = arena.array(normalization.mean)
            n.pointee.n_std = normalization.std.count
            n.pointee.std = arena.array(normalization.std)
            m.pointee.normalization = n
        }
        m.pointee.n_class_names = metadata.classNames.count
        m.pointee.class_names = try strings(metadata.classNames, "class name")

        var history: [UnsafeMutablePointer<Compressor__HistoryEntry>] = []
        for entry in metadata.history {
            let h = arena.message(compressor__history_entry__init)
            h.pointee.pass = try string(entry.pass, "history pass name")
            var parameters: [UnsafeMutablePointer<Compressor__StringPair>] = []
            for key in entry.parameters.keys.sorted() {
                let p = arena.message(compressor__string_pair__init)
                p.pointee.key = try string(key, "history parameter name")
                p.pointee.value = try string(entry.parameters[key]!, "history parameter '\(key)'")
                parameters.append(p)
            }
            h.pointee.n_parameters = parameters.count
            h.pointee.parameters = arena.pointers(parameters)
            if let seed = entry.seed {
                h.pointee.has_seed = 1
                h.pointee.seed = seed
            }
            var metrics: [UnsafeMutablePointer<Compressor__MetricPair>] = []
            for key in entry.metrics.keys.sorted() {
                let p = arena.message(compressor__metric_pair__init)
                p.pointee.key = try string(key, "history metric name")
                p.pointee.has_value = 1
                p.pointee.value = entry.metrics[key]!
                metrics.append(p)
            }
            h.pointee.n_metrics = metrics.count
            h.pointee.metrics = arena.pointers(metrics)
            var attachments: [UnsafeMutablePointer<Compressor__HistoryAttachment>] = []
            for name in entry.attachments.keys.sorted() {
                let a = arena.message(compressor__history_attachment__init)
                a.pointee.name = try string(name, "history attachment name")
                a.pointee.text = try string(entry.attachments[name]!, "history attachment '\(name)'")
                attachments.append(a)
            }
            h.pointee.n_attachments = attachments.count
            h.pointee.attachments = arena.pointers(attachments)
            history.append(h)
        }
        m.pointee.n_history = history.count
        m.pointee.history = arena.pointers(history)
        // Empty options write nothing, so files without them keep their bytes.
        if metadata.storage != StorageOptions() {
            let s = arena.message(compressor__storage_options__init)
            s.pointee.n_shared_tensors = metadata.storage.sharedTensors.count
            s.pointee.shared_tensors = try strings(metadata.storage.sharedTensors, "shared tensor name")
            if metadata.storage.huffman {
                s.pointee.has_huffman = 1
                s.pointee.huffman = 1
            }
            var hashed: [UnsafeMutablePointer<Compressor__HashedTensorOption>] = []
            for name in metadata.storage.hashedTensors.keys.sorted() {
                let entry = metadata.storage.hashedTensors[name]!
                let h = arena.message(compressor__hashed_tensor_option__init)
                h.pointee.name = try string(name, "hashed tensor name")
                h.pointee.has_buckets = 1
                h.pointee.buckets = UInt64(entry.buckets)
                h.pointee.has_seed = 1
                h.pointee.seed = entry.seed
                hashed.append(h)
            }
            s.pointee.n_hashed_tensors = hashed.count
            s.pointee.hashed_tensors = arena.pointers(hashed)
            let precisions = try metadata.storage.precisions.keys.sorted().map { name throws(ModelFileError) in
                try tensorPrecision(metadata.storage.precisions[name]!, named: name)
            }
            s.pointee.n_precisions = precisions.count
            s.pointee.precisions = arena.pointers(precisions)
            m.pointee.storage = s
        }
        return m
    }

    func tensorPrecision(_ precision: TensorPrecision, named name: String) throws(ModelFileError)
        -> UnsafeMutablePointer<Compressor__TensorPrecision> {
        let p = arena.message(compressor__tensor_precision__init)
        p.pointee.tensor = try string(name, "precision record's tensor name")
        switch precision {
        case .float16:
            p.pointee.format_case = COMPRESSOR__TENSOR_PRECISION__FORMAT_FLOAT16
            p.pointee.float16 = noAttributes()
        case .int8(let grid):
            let q = arena.message(compressor__quantization_parameters__init)
            if let axis = grid.axis {
                q.pointee.has_axis = 1
                q.pointee.axis = Int64(axis)
            }
            q.pointee.n_scales = grid.scales.count
            q.pointee.scales = arena.array(grid.scales)
            q.pointee.n_zero_points = grid.zeroPoints.count
            q.pointee.zero_points = arena.array(grid.zeroPoints)
            q.pointee.has_qmin = 1
            q.pointee.qmin = grid.qmin
            q.pointee.has_qmax = 1
            q.pointee.qmax = grid.qmax
            p.pointee.format_case = COMPRESSOR__TENSOR_PRECISION__FORMAT_INT8
            p.pointee.int8 = q
        }
        return p
    }

    // MARK: Attribute pieces

    private func noAttributes() -> UnsafeMutablePointer<Compressor__NoAttributes> {
        // A oneof member is only packed when its message pointer is non-null.
        arena.message(compressor__no_attributes__init)
    }

    private func size2(_ s: Size2) -> UnsafeMutablePointer<Compressor__Size2> {
        let m = arena.message(compressor__size2__init)
        m.pointee.has_h = 1
        m.pointee.h = Int64(s.h)
        m.pointee.has_w = 1
        m.pointee.w = Int64(s.w)
        return m
    }

    private func padding2(_ p: Padding2) -> UnsafeMutablePointer<Compressor__Padding2> {
        let m = arena.message(compressor__padding2__init)
        m.pointee.has_top = 1
        m.pointee.top = Int64(p.top)
        m.pointee.has_left = 1
        m.pointee.left = Int64(p.left)
        m.pointee.has_bottom = 1
        m.pointee.bottom = Int64(p.bottom)
        m.pointee.has_right = 1
        m.pointee.right = Int64(p.right)
        return m
    }

    private func pool2d(_ p: Pool2d) -> UnsafeMutablePointer<Compressor__Pool2dAttributes> {
        let m = arena.message(compressor__pool2d_attributes__init)
        m.pointee.kernel = size2(p.kernel)
        m.pointee.stride = size2(p.stride)
        m.pointee.padding = padding2(p.padding)
        m.pointee.dilation = size2(p.dilation)
        m.pointee.has_ceil_mode = 1
        m.pointee.ceil_mode = p.ceilMode ? 1 : 0
        return m
    }

    private func axisAttributes(_ axis: Int) -> UnsafeMutablePointer<Compressor__AxisAttributes> {
        let m = arena.message(compressor__axis_attributes__init)
        m.pointee.has_axis = 1
        m.pointee.axis = Int64(axis)
        return m
    }

    // MARK: Scalars and arrays

    /// A C copy of `s`; C strings end at NUL, so a string containing one would
    /// not come back as written.
    private func string(_ s: String, _ what: String) throws(ModelFileError) -> UnsafeMutablePointer<CChar> {
        guard !s.utf8.contains(0) else { throw .unencodable("\(what) \(s.debugDescription) contains a NUL character") }
        return arena.string(s)
    }

    private func strings(_ values: [String], _ what: String) throws(ModelFileError)
        -> UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>? {
        for s in values where s.utf8.contains(0) {
            throw .unencodable("\(what) \(s.debugDescription) contains a NUL character")
        }
        return arena.strings(values)
    }

    private func int64s(_ values: [Int]) -> UnsafeMutablePointer<Int64>? {
        arena.array(values.map { Int64($0) })
    }

    /// A copy of `bytes`.
    private func byteArray(_ bytes: [UInt8]) -> ProtobufCBinaryData {
        arena.bytes(count: bytes.count) { out in bytes.withUnsafeBytes { out.copyMemory(from: $0) } }
    }

    /// The elements' bytes, little-endian whatever the host's byte order.
    private func littleEndianBytes<T>(_ values: [T]) -> ProtobufCBinaryData {
        let width = MemoryLayout<T>.size
        return arena.bytes(count: values.count * width) { out in
            values.withUnsafeBytes { out.copyMemory(from: $0) }
            #if _endian(big)
            if width > 1 {
                for start in stride(from: 0, to: out.count, by: width) {
                    var lo = start, hi = start + width - 1
                    while lo < hi { out.swapAt(lo, hi); lo += 1; hi -= 1 }
                }
            }
            #endif
        }
    }
}

/// Bytes of `value` as a protobuf varint.
func varintSize(_ value: UInt64) -> Int {
    var v = value, n = 1
    while v >= 0x80 { v >>= 7; n += 1 }
    return n
}

extension Codebook {
    /// The codebook `values` already are: one centroid per distinct non-zero
    /// value, in order of first appearance (so the centroids keep their order,
    /// and their optimizer state, from one epoch's rebuild to the next), and
    /// assignment -1 for every zero, which stays +0.0.
    public init(tying values: some Sequence<Float>) {
        var index: [Float: Int32] = [:]
        var centroids: [Float] = []
        var assignments: [Int32] = []
        for v in values {
            guard v != 0 else { assignments.append(-1); continue }
            if let k = index[v] {
                assignments.append(k)
            } else {
                let k = Int32(centroids.count)
                index[v] = k
                centroids.append(v)
                assignments.append(k)
            }
        }
        self.init(centroids: centroids, assignments: assignments)
    }
}

extension Codebook {
    /// The codebook of a hashed tensor (HashedNets): one centroid per bucket
    /// of `layout`, each weight assigned its bucket and sign. The centroids
    /// are ``HashedLayout/projectedBuckets(of:)`` of `values`: their exact
    /// buckets when the values are drawn from the layout, else the
    /// least-squares projection.
    public init(hashing values: [Float], layout: HashedLayout) {
        self.init(centroids: layout.projectedBuckets(of: values), assignments: layout.assignments,
                  negated: (0..<layout.count).map { layout.isNegated($0) })
    }
}

extension TrainingGraph {
    /// Ties each trainable parameter named in `hashed` (the model's
    /// `storage.hashedTensors`) to its buckets (``Codebook/init(hashing:layout:)``),
    /// so training moves buckets by their members' signed summed gradients
    /// and the tensor stays drawn from its layout. Names that are not
    /// parameters of this graph, and parameters already tied, are left alone.
    public func tieHashedTensors(_ hashed: [String: HashedTensor]) {
        for name in hashed.keys.sorted() {
            guard let p = parameters[name], p.policy.codebook == nil else { continue }
            p.tie(to: Codebook(hashing: Array(p.values), layout: hashed[name]!.layout(count: p.count)))
        }
    }

    /// Ties each trainable parameter named in `names` (the model's
    /// `storage.sharedTensors`) to the codebook of its current values (see
    /// ``Codebook/init(tying:)``), so training moves shared centroids and
    /// never adds a value or revives a zero. Names that are not parameters of
    /// this graph, and parameters already tied, are left alone.
    public func tieSharedTensors(_ names: [String]) {
        for name in names {
            guard let p = parameters[name], p.policy.codebook == nil else { continue }
            p.tie(to: Codebook(tying: p.values))
        }
    }
}

/// Random label-preserving changes applied to training images.
public struct Augmentation: Sendable, Equatable {
    /// Pad each side by this many zero pixels, then crop back to the original
    /// size at a random offset (0 disables).
    public var cropPadding: Int
    /// Mirror left-right with probability one half.
    public var horizontalFlip: Bool

    public init(cropPadding: Int = 0, horizontalFlip: Bool = false) {
        self.cropPadding = cropPadding; self.horizontalFlip = horizontalFlip
    }

    public static let none = Augmentation()
    public var isIdentity: Bool { cropPadding == 0 && !horizontalFlip }
}

/// One epoch of shuffled mini-batches. The order depends only on `seed` and
/// `epoch`, so an interrupted run resumed at epoch k sees the same batches.
public struct MiniBatches: Sequence, Sendable {
    public let data: LabeledImages
    public let batchSize: Int
    public let order: [Int]
    public let augmentation: Augmentation
    private let augmentationSeed: UInt64

    /// - Parameters:
    ///   - shuffle: false keeps the data's order (evaluation).
    ///   - dropLast: drop a final batch smaller than `batchSize`.
    public init(_ data: LabeledImages, batchSize: Int, seed: UInt64, epoch: Int, shuffle: Bool = true,
                dropLast: Bool = false, augmentation: Augmentation = .none) {
        precondition(batchSize >= 1, "batch size must be at least 1")
        self.data = data
        self.batchSize = batchSize
        self.augmentation = augmentation
        let epochSeed = seed ^ (UInt64(truncatingIfNeeded: epoch) &* 0x9E37_79B9_7F4A_7C15)
        var rng = SeededGenerator(seed: epochSeed)
        var order = Array(0..<data.count)
        if shuffle {
            for i in stride(from: order.count - 1, to: 0, by: -1) {
                order.swapAt(i, Int(rng.next() % UInt64(i + 1)))
            }
        }
        if dropLast { order.removeLast(order.count % batchSize) }
        self.order = order
        augmentationSeed = rng.next()
    }

    /// Number of batches in the epoch.
    public var count: Int { (order.count + batchSize - 1) / batchSize }

    /// Batch `index`, with augmentation applied.
    public func batch(_ index: Int) -> LabeledImages {
        var b = data.subset(Array(indices(index)))
        if !augmentation.isIdentity {
            var rng = SeededGenerator(seed: augmentationSeed ^ UInt64(index))
            b.images = augmented(b.images, with: augmentation, rng: &rng)
        }
        return b
    }

    /// The indices into `data` of batch `index`'s images, in batch order.
    public func indices(_ index: Int) -> ArraySlice<Int> {
        let lo = index * batchSize
        return order[lo..<Swift.min(lo + batchSize, order.count)]
    }

    public func makeIterator() -> AnyIterator<LabeledImages> {
        var i = 0
        return AnyIterator {
            guard i < count else { return nil }
            defer { i += 1 }
            return batch(i)
        }
    }
}

/// Applies random crop-with-padding and horizontal flip to each image of `[N,C,H,W]`.
public func augmented(_ images: Tensor, with a: Augmentation, rng: inout SeededGenerator) -> Tensor {
    let (n, c, h, w) = (images.shape[0], images.shape[1], images.shape[2], images.shape[3])
    let src = images.floats
    var dst = [Float](repeating: 0, count: src.count)
    let p = a.cropPadding
    src.withUnsafeBufferPointer { s in
        dst.withUnsafeMutableBufferPointer { d in
            for i in 0..<n {
                // The crop window starts at (dy, dx) in the padded image: a shift of (dy - p, dx - p).
                let dy = p > 0 ? Int(rng.next() % UInt64(2 * p + 1)) - p : 0
                let dx = p > 0 ? Int(rng.next() % UInt64(2 * p + 1)) - p : 0
                let flip = a.horizontalFlip && rng.next() & 1 == 1
                for ch in 0..<c {
                    let plane = (i &* c &+ ch) &* h &* w
                    for y in 0..<h {
                        let sy = y &+ dy
                        guard sy >= 0 && sy < h else { continue }
                        for x in 0..<w {
                            let ox = flip ? w &- 1 &- x : x
                            let sx = ox &+ dx
                            guard sx >= 0 && sx < w else { continue }
                            d[plane &+ y &* w &+ x] = s[plane &+ sy &* w &+ sx]
                        }
                    }
                }
            }
        }
    }
    return Tensor(shape: images.shape, floats: dst)
}

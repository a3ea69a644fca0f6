/// How a hashed tensor draws its elements from a small bucket vector: the
/// hashing trick of HashedNets (Chen, Wilson, Tyree, Weinberger & Chen,
/// "Compressing Neural Networks with the Hashing Trick", ICML 2015).
///
/// Element `i` (row-major) of a tensor of `count` elements is
/// `sign(i) · bucket[bucket(i)]`, with `bucket(i)` in `0..<buckets` and
/// `sign(i)` in {+1, -1}. Both come from a fixed 64-bit mix of `(seed, i)`;
/// the model file stores only the buckets and the seed, so this function is
/// part of the file format and never changes:
///
///     mix(z)    = splitmix64's finalizer: z ^= z >> 30; z *= 0xBF58476D1CE4E5B9;
///                 z ^= z >> 27; z *= 0x94D049BB133111EB; z ^= z >> 31
///     key(i, s) = mix(seed &+ (2·i + s + 1) &* 0x9E3779B97F4A7C15)   (wrapping UInt64)
///     bucket(i) = high 64 bits of key(i, 0) · buckets                 (Lemire's range reduction)
///     sign(i)   = -1 when the top bit of key(i, 1) is set, else +1
///
/// A sign is applied to the bit pattern (the sign bit flipped), so -0.0 and
/// every NaN payload come back exactly, and so values and buckets determine
/// each other bit for bit.
public struct HashedLayout: Sendable, Hashable {
    public var seed: UInt64
    /// Length of the bucket vector, at least 1.
    public var buckets: Int
    /// Virtual elements drawn from it.
    public var count: Int

    public init(seed: UInt64, buckets: Int, count: Int) {
        precondition(buckets >= 1 && count >= 0, "a hashed layout needs at least one bucket, got \(buckets)")
        self.seed = seed; self.buckets = buckets; self.count = count
    }

    /// splitmix64's output function (Steele, Lea & Flood, "Fast splittable
    /// pseudorandom number generators", OOPSLA 2014).
    @inline(__always)
    static func mix(_ value: UInt64) -> UInt64 {
        var z = value
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    @inline(__always)
    func key(_ i: Int, _ salt: UInt64) -> UInt64 {
        Self.mix(seed &+ (UInt64(i) &* 2 &+ salt &+ 1) &* 0x9E37_79B9_7F4A_7C15)
    }

    /// The bucket of element `i`.
    @inline(__always)
    public func bucket(_ i: Int) -> Int {
        Int(truncatingIfNeeded: key(i, 0).multipliedFullWidth(by: UInt64(buckets)).high)
    }

    /// Whether element `i` is the negated bucket value.
    @inline(__always)
    public func isNegated(_ i: Int) -> Bool { key(i, 1) >> 63 != 0 }

    /// Element `i`'s sign as a bit mask on float32 bit patterns (0 or the sign bit).
    @inline(__always)
    public func signMask(_ i: Int) -> UInt32 { UInt32(truncatingIfNeeded: key(i, 1) >> 63) << 31 }

    /// Every element's bucket, in order.
    public var assignments: [Int32] {
        (0..<count).map { Int32(truncatingIfNeeded: bucket($0)) }
    }

    /// Every element's sign, +1 or -1, in order.
    public var signs: [Float] { (0..<count).map { isNegated($0) ? -1 : 1 } }

    /// The `count` virtual elements of `buckets` (bit patterns), signs applied to the sign bit.
    public func materialize(bitPatterns buckets: [UInt32]) -> [UInt32] {
        precondition(buckets.count == self.buckets, "a layout of \(self.buckets) buckets got \(buckets.count)")
        return (0..<count).map { buckets[bucket($0)] ^ signMask($0) }
    }

    /// The `count` virtual elements of `buckets`.
    public func materialize(_ buckets: [Float]) -> [Float] {
        materialize(bitPatterns: buckets.map(\.bitPattern)).map { Float(bitPattern: $0) }
    }

    /// The bucket bit patterns `values` are drawn from, when every element
    /// is exactly (bit for bit) its sign times its bucket; nil otherwise.
    /// Buckets no element uses are +0.0.
    public func exactBuckets(of values: UnsafeBufferPointer<Float>) -> [UInt32]? {
        guard values.count == count else { return nil }
        var buckets = [UInt32](repeating: 0, count: self.buckets)
        var seen = [Bool](repeating: false, count: self.buckets)
        for i in 0..<count {
            let k = bucket(i)
            let bits = values[i].bitPattern ^ signMask(i)
            if seen[k] {
                guard buckets[k] == bits else { return nil }
            } else {
                (buckets[k], seen[k]) = (bits, true)
            }
        }
        return buckets
    }

    /// The least-squares buckets of `values`: bucket k is the mean of
    /// `sign(i) · values[i]` over its members (+0.0 when it has none), the
    /// projection of a dense tensor onto the tensors this layout can
    /// express. Values already drawn from the layout give back their buckets
    /// bit for bit.
    public func projectedBuckets(of values: [Float]) -> [Float] {
        precondition(values.count == count, "a layout of \(count) elements got \(values.count)")
        if let exact = values.withUnsafeBufferPointer({ exactBuckets(of: $0) }) {
            return exact.map { Float(bitPattern: $0) }
        }
        var sums = [Double](repeating: 0, count: buckets)
        var members = [Int](repeating: 0, count: buckets)
        for i in 0..<count {
            let k = bucket(i)
            sums[k] += isNegated(i) ? -Double(values[i]) : Double(values[i])
            members[k] += 1
        }
        return zip(sums, members).map { $1 == 0 ? 0 : Float($0 / Double($1)) }
    }
}

/// A tensor a model keeps hashed (``StorageOptions/hashedTensors``): its
/// bucket count and seed; the element count is the tensor's.
public struct HashedTensor: Sendable, Hashable {
    public var buckets: Int
    public var seed: UInt64

    public init(buckets: Int, seed: UInt64) { self.buckets = buckets; self.seed = seed }

    /// The layout of this tensor's `count` elements.
    public func layout(count: Int) -> HashedLayout { HashedLayout(seed: seed, buckets: buckets, count: count) }
}

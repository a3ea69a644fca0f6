// Unaligned eight-lane loads and stores: the one definition, for the kernels
// of this target and the element-wise loops of Compress alike. `@inline(always)`
// inlines them into every caller, even in an unoptimized build (where
// `@inlinable @inline(__always)` leaves a call), so each caller's own target
// flags apply: ymm registers here (AVX2), two xmm registers in Compress (no
// AVX). A call across the two targets would pass `SIMD8<Float>` in registers
// the two sides disagree on.

/// Eight floats from `p`, which need not be 32-byte aligned.
@inline(always)
public func load8(_ p: UnsafePointer<Float>) -> SIMD8<Float> {
    UnsafeRawPointer(p).loadUnaligned(as: SIMD8<Float>.self)
}

/// Stores eight floats at `p`, which need not be 32-byte aligned.
@inline(always)
public func store8(_ v: SIMD8<Float>, _ p: UnsafeMutablePointer<Float>) {
    UnsafeMutableRawPointer(p).storeBytes(of: v, as: SIMD8<Float>.self)
}

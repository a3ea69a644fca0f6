// Unaligned eight-lane loads and stores: the one definition, for the kernels
// of this target and the element-wise loops of Compress alike. `@inline(always)`
// inlines them into every caller, even in an unoptimized build (where
// `@inlinable @inline(__always)` leaves a call), so each caller's own target
// flags apply: ymm registers here (AVX2), two xmm registers in Compress (no
// AVX). A call across the two targets would pass `SIMD8<Float>` in registers
// the two sides disagree on. So the bodies call C `static inline` always_inline
// functions (CCPUFeatures/include/simd_memory.h), inlined by LLVM in every
// module: the generic `loadUnaligned(as: SIMD8<Float>.self)` they replace was
// left out of line in large kernels, as one specialization symbol that the
// linker shared with Compress's non-AVX copy (a 3x3 conv ran 2-4x slower).

import CCPUFeatures

/// Eight floats from `p`, which need not be 32-byte aligned.
@inline(always)
public func load8(_ p: UnsafePointer<Float>) -> SIMD8<Float> {
    compressor_load8(p)
}

/// Stores eight floats at `p`, which need not be 32-byte aligned.
@inline(always)
public func store8(_ v: SIMD8<Float>, _ p: UnsafeMutablePointer<Float>) {
    compressor_store8(v, p)
}

#ifndef COMPRESSOR_SIMD_WIDE_H
#define COMPRESSOR_SIMD_WIDE_H

// Sixteen-lane vector operations for the width-16 kernels (SIMDKernels512 and its
// AVX2 twin SIMDKernelsWide16, one Swift source compiled twice). Swift imports
// `compressor_float16` as `SIMD16<Float>`. Every helper is `static inline`
// always_inline, like simd_memory.h: each twin inlines its own copy compiled with
// its own flags (zmm registers with -mavx512f, ymm pairs with AVX2 only), so no
// out-of-line function, whose one symbol the linker would share between the
// twins, can carry AVX-512 code into the AVX2 twin. The kernels use these
// instead of the generic `SIMD16` operations of the standard library for the
// same reason.
//
// In NCHW8c one 16-lane vector is two 8-channel blocks: lanes 0-7 belong to
// block 2p, lanes 8-15 to block 2p + 1, each in its own plane.

#include "simd_memory.h"

typedef float compressor_float16 __attribute__((ext_vector_type(16)));

#define COMPRESSOR_WIDE_INLINE static inline __attribute__((always_inline))

/// Sixteen floats from `p` (unaligned).
COMPRESSOR_WIDE_INLINE compressor_float16 compressor_load16(const float *p) {
    compressor_float16 v;
    __builtin_memcpy(&v, p, sizeof v);
    return v;
}

/// Lanes 0-7 from `low`, lanes 8-15 from `high` (unaligned).
COMPRESSOR_WIDE_INLINE compressor_float16 compressor_load8_pair(const float *low, const float *high) {
    typedef float float8 __attribute__((ext_vector_type(8)));
    float8 a, b;
    __builtin_memcpy(&a, low, sizeof a);
    __builtin_memcpy(&b, high, sizeof b);
    return __builtin_shufflevector(a, b, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
}

/// Stores lanes 0-7 of `v` at `p`.
COMPRESSOR_WIDE_INLINE void compressor_store16_low(compressor_float16 v, float *p) {
    typedef float float8 __attribute__((ext_vector_type(8)));
    float8 a = __builtin_shufflevector(v, v, 0, 1, 2, 3, 4, 5, 6, 7);
    __builtin_memcpy(p, &a, sizeof a);
}

/// Stores lanes 8-15 of `v` at `p`.
COMPRESSOR_WIDE_INLINE void compressor_store16_high(compressor_float16 v, float *p) {
    typedef float float8 __attribute__((ext_vector_type(8)));
    float8 a = __builtin_shufflevector(v, v, 8, 9, 10, 11, 12, 13, 14, 15);
    __builtin_memcpy(p, &a, sizeof a);
}

/// `acc + x * w` in every lane, one rounding (FMA).
COMPRESSOR_WIDE_INLINE compressor_float16 compressor_fma16(compressor_float16 acc, float x, compressor_float16 w) {
    return __builtin_elementwise_fma((compressor_float16)x, w, acc);
}

/// `v + r`.
COMPRESSOR_WIDE_INLINE compressor_float16 compressor_add16(compressor_float16 v, compressor_float16 r) {
    return v + r;
}

/// `v` with every lane clamped to `[lower, upper]` as `BlockedClamp` clamps
/// (a NaN lane stays NaN): vmaxps, vminps.
COMPRESSOR_WIDE_INLINE compressor_float16 compressor_clamp16(compressor_float16 v, float lower, float upper) {
    compressor_float16 low = (compressor_float16)lower, high = (compressor_float16)upper;
    v = v < low ? low : v;
    return v > high ? high : v;
}

/// `acc + x * w` in every lane of an 8-lane vector (the tiles of one block alone).
COMPRESSOR_WIDE_INLINE compressor_float8 compressor_fma8(compressor_float8 acc, float x, compressor_float8 w) {
    return __builtin_elementwise_fma((compressor_float8)x, w, acc);
}

/// `v + r` in 8 lanes.
COMPRESSOR_WIDE_INLINE compressor_float8 compressor_add8(compressor_float8 v, compressor_float8 r) {
    return v + r;
}

/// `v` clamped like `compressor_clamp16`, in 8 lanes.
COMPRESSOR_WIDE_INLINE compressor_float8 compressor_clamp8(compressor_float8 v, float lower, float upper) {
    compressor_float8 low = (compressor_float8)lower, high = (compressor_float8)upper;
    v = v < low ? low : v;
    return v > high ? high : v;
}

#undef COMPRESSOR_WIDE_INLINE

#endif

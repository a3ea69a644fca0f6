#ifndef COMPRESSOR_SIMD_LANES_H
#define COMPRESSOR_SIMD_LANES_H

// Lane moves for the packed half-block tiles of SIMDKernels (BlockedHalfTiles.swift),
// `static inline` always_inline like simd_memory.h so each caller compiles them
// with its own target flags (vbroadcastf128, vblendps and vperm2f128 with AVX).

#include "simd_memory.h"

/// The four floats at `p` in both halves: lanes 0-3 and 4-7 are `p[0..3]`.
static inline __attribute__((always_inline)) compressor_float8 compressor_load4_twice(const float *p) {
    typedef float float4 __attribute__((ext_vector_type(4)));
    float4 v;
    __builtin_memcpy(&v, p, sizeof v);
    return __builtin_shufflevector(v, v, 0, 1, 2, 3, 0, 1, 2, 3);
}

/// Lanes 0-3 of `low` followed by lanes 4-7 of `high`.
static inline __attribute__((always_inline)) compressor_float8 compressor_join_halves(compressor_float8 low,
                                                                                      compressor_float8 high) {
    return __builtin_shufflevector(low, high, 0, 1, 2, 3, 12, 13, 14, 15);
}

/// Lanes 4-7 of `v` moved to lanes 0-3, followed by lanes 4-7 of `high`.
static inline __attribute__((always_inline)) compressor_float8 compressor_upper_half_down(compressor_float8 v,
                                                                                         compressor_float8 high) {
    return __builtin_shufflevector(v, high, 4, 5, 6, 7, 12, 13, 14, 15);
}

#endif

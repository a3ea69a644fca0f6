#ifndef COMPRESSOR_SIMD_MEMORY_H
#define COMPRESSOR_SIMD_MEMORY_H

// Unaligned 8-float loads and stores for SIMDKernels' `load8` and `store8`
// (Swift imports `compressor_float8` as `SIMD8<Float>`). `static inline` with
// always_inline: every Swift module that calls them gets its own inlined copy,
// compiled with that module's target flags (ymm in SIMDKernels, two xmm in
// Compress). The generic `loadUnaligned(as: SIMD8<Float>.self)` was not always
// inlined in large kernels; its out-of-line specialization had one symbol for
// both modules, and the linker kept one copy (see SIMDMemory.swift).

typedef float compressor_float8 __attribute__((ext_vector_type(8)));

static inline __attribute__((always_inline)) compressor_float8 compressor_load8(const float *p) {
    compressor_float8 v;
    __builtin_memcpy(&v, p, sizeof v);
    return v;
}

static inline __attribute__((always_inline)) void compressor_store8(compressor_float8 v, float *p) {
    __builtin_memcpy(p, &v, sizeof v);
}

#endif

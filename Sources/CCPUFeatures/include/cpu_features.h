#ifndef COMPRESSOR_CPU_FEATURES_H
#define COMPRESSOR_CPU_FEATURES_H

/// 1 when the CPU and the OS support AVX2 and FMA (the instructions the
/// Kernels target is compiled for), else 0.
int compressor_cpu_supports_avx2_fma(void);

/// 1 when the CPU has AVX-512F and AVX-512VL (the instructions SIMDKernels512
/// is compiled for, with AVX2 and FMA) and the OS saves the zmm and mask
/// registers (XCR0 bits 1-2 and 5-7), else 0.
int compressor_cpu_supports_avx512(void);

#include "simd_memory.h"
#include "simd_lanes.h"
#include "simd_wide.h"

#endif

#ifndef COMPRESSOR_CPU_FEATURES_H
#define COMPRESSOR_CPU_FEATURES_H

/// 1 when the CPU and the OS support AVX2 and FMA (the instructions the
/// Kernels target is compiled for), else 0.
int compressor_cpu_supports_avx2_fma(void);

/// 1 when the CPU and the OS support AVX-512F and AVX-512VL (the width-16
/// kernels' instructions) besides AVX2 and FMA, else 0.
int compressor_cpu_supports_avx512(void);

#include "simd_memory.h"
#include "simd_lanes.h"

#endif

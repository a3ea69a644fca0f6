#ifndef COMPRESSOR_CPU_FEATURES_H
#define COMPRESSOR_CPU_FEATURES_H

/// 1 when the CPU and the OS support AVX2 and FMA (the instructions the
/// Kernels target is compiled for), else 0.
int compressor_cpu_supports_avx2_fma(void);

#include "simd_memory.h"
#include "simd_lanes.h"

#endif

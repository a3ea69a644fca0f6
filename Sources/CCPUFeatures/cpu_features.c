#include "cpu_features.h"

int compressor_cpu_supports_avx2_fma(void) {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
#else
    return 0;
#endif
}

int compressor_cpu_supports_avx512(void) {
#if defined(__x86_64__) || defined(__i386__)
    // compiler-rt's and libgcc's feature checks also require the OS to save
    // the zmm state (XCR0 bits 5-7), so a kernel that disabled it reads 0.
    __builtin_cpu_init();
    return compressor_cpu_supports_avx2_fma() && __builtin_cpu_supports("avx512f")
        && __builtin_cpu_supports("avx512vl");
#else
    return 0;
#endif
}

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
    if (!compressor_cpu_supports_avx2_fma()) return 0;
    if (!__builtin_cpu_supports("avx512f") || !__builtin_cpu_supports("avx512vl")) return 0;
    // The runtime's feature bits already require the OS to save the zmm state; checked
    // here again so that the answer does not depend on which runtime library did it.
    unsigned int eax = 1, ebx = 0, ecx = 0, edx = 0;
    __asm__ volatile("cpuid" : "+a"(eax), "=b"(ebx), "+c"(ecx), "=d"(edx));
    if (!(ecx & (1u << 27))) return 0;  // OSXSAVE: XGETBV is usable
    unsigned int xcr0_low = 0, xcr0_high = 0;
    __asm__ volatile("xgetbv" : "=a"(xcr0_low), "=d"(xcr0_high) : "c"(0));
    const unsigned int sse_avx = (1u << 1) | (1u << 2), opmask_zmm = (1u << 5) | (1u << 6) | (1u << 7);
    return (xcr0_low & (sse_avx | opmask_zmm)) == (sse_avx | opmask_zmm);
#else
    return 0;
#endif
}

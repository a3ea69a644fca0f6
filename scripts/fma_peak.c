/* Measures this core's FMA peak in GFLOP/s with AVX2 (ymm) and, where the CPU has it,
   AVX-512 (zmm) code: 12 independent FMA chains per width, best of 5 runs of about 0.3 s.
   The denominator of the "percent of peak" in docs/benchmarks.md.
   Build and run: cc -O2 scripts/fma_peak.c -o /tmp/fma_peak && /tmp/fma_peak */
#include <immintrin.h>
#include <stdio.h>
#include <time.h>

static double now(void) { struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t); return t.tv_sec + t.tv_nsec * 1e-9; }

#define CHAINS(F) F(0) F(1) F(2) F(3) F(4) F(5) F(6) F(7) F(8) F(9) F(10) F(11)

__attribute__((target("avx2,fma"))) static double avx2(long n) {
    __m256 a[12], b = _mm256_set1_ps(1.0000001f), c = _mm256_set1_ps(1e-7f);
    for (int i = 0; i < 12; i++) a[i] = _mm256_set1_ps((float)i);
    double t = now();
    for (long k = 0; k < n; k++) {
#define FMA256(i) a[i] = _mm256_fmadd_ps(a[i], b, c);
        CHAINS(FMA256)
    }
    t = now() - t;
    volatile float sink = 0;
    for (int i = 0; i < 12; i++) sink += a[i][0];
    return n * 12.0 * 8 * 2 / t / 1e9;
}

__attribute__((target("avx512f"))) static double avx512(long n) {
    __m512 a[12], b = _mm512_set1_ps(1.0000001f), c = _mm512_set1_ps(1e-7f);
    for (int i = 0; i < 12; i++) a[i] = _mm512_set1_ps((float)i);
    double t = now();
    for (long k = 0; k < n; k++) {
#define FMA512(i) a[i] = _mm512_fmadd_ps(a[i], b, c);
        CHAINS(FMA512)
    }
    t = now() - t;
    volatile float sink = 0;
    for (int i = 0; i < 12; i++) sink += a[i][0];
    return n * 12.0 * 16 * 2 / t / 1e9;
}

int main(void) {
    __builtin_cpu_init();
    double best2 = 0, best512 = 0;
    int has512 = __builtin_cpu_supports("avx512f");
    for (int r = 0; r < 5; r++) {
        double g = avx2(100000000);
        if (g > best2) best2 = g;
        if (has512) {
            g = avx512(50000000);
            if (g > best512) best512 = g;
        }
    }
    printf("fma peak, 1 core: avx2 %.1f GFLOP/s", best2);
    if (has512) printf(", avx512 %.1f GFLOP/s", best512);
    printf("\n");
    return 0;
}

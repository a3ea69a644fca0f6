/* Measures OpenBLAS sgemm GFLOP/s on this machine, for comparison with compressor bench.
   Build and run: gcc -O2 scripts/sgemm_gflops.c $(pkg-config --cflags --libs openblas) -o /tmp/sgemm && /tmp/sgemm */
#include <cblas.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static double now(void) { struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t); return t.tv_sec + t.tv_nsec * 1e-9; }

static double gflops(int m, int n, int k) {
    float *a = malloc(sizeof(float) * m * k), *b = malloc(sizeof(float) * k * n), *c = malloc(sizeof(float) * m * n);
    for (int i = 0; i < m * k; i++) a[i] = (float)(i % 7) * 0.1f;
    for (int i = 0; i < k * n; i++) b[i] = (float)(i % 5) * 0.1f;
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, m, n, k, 1, a, k, b, n, 0, c, n);
    int reps = 0; double t0 = now(), t;
    do { cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, m, n, k, 1, a, k, b, n, 0, c, n); reps++; t = now() - t0; } while (t < 1.0);
    free(a); free(b); free(c);
    return 2.0 * m * n * k * reps / t / 1e9;
}

int main(void) {
    int shapes[][3] = {{1024, 1024, 1024}, {64, 784, 288}, {128, 196, 576}, {50, 64, 500}};
    for (int threads = 1; threads <= 2; threads++) {
        openblas_set_num_threads(threads);
        for (int s = 0; s < 4; s++)
            printf("threads %d  M=%4d N=%4d K=%4d  %.1f GFLOP/s\n", threads, shapes[s][0], shapes[s][1], shapes[s][2],
                   gflops(shapes[s][0], shapes[s][1], shapes[s][2]));
    }
    return 0;
}

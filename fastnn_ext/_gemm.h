/* fastnn's own GEMM (see _gemm_impl.h), in double and float.
 *
 * Written with GCC vector extensions on 64-byte vectors: with AVX-512 each
 * is one zmm register, and the MR x NV accumulator tile plus NV operand
 * vectors fill most of the 32 of them. FASTNN_OWN_GEMM says whether this
 * build has it: GCC (or clang with -mavx512f) on x86-64, and not the novec
 * ablation build (FASTNN_NO_OWN_GEMM). A build whose -march lacks AVX-512
 * (a portable x86-64-v3 wheel) still compiles it, for AVX-512 alone, through
 * `#pragma GCC target`; fastnn_gemm_cpu_ok() then says at run time whether
 * this CPU can run it. Where it is absent or can't run, the kernels use BLAS.
 *
 * Blocking: KC x NR of B (the micro-panel reused across a whole MC block of
 * A) stays in L1, the MC x KC block of A in L2. The defaults were tuned on a
 * 2-core AVX-512 machine (AMD family 26, 48 KiB L1d, 1 MiB L2): 8 x 24
 * doubles per tile, ~118 GFLOP/s on one core for 256 x 784 times 784 x 5000,
 * ~230 on two; -D overrides them. The float version uses the same MR, KC, MC
 * and NC with 16 lanes a vector (so NR = 48).
 */
#ifndef FASTNN_GEMM_H
#define FASTNN_GEMM_H
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#if defined(__x86_64__) && !defined(FASTNN_NO_OWN_GEMM) && defined(__AVX512F__)
#define FASTNN_OWN_GEMM 1
static const char FASTNN_GEMM_KERNEL[] = "avx512 8x24 f64 / 8x48 f32";
#include <pthread.h>

#ifdef __AVX512F__
static int fastnn_gemm_cpu_ok(void) { return 1; }  /* the whole build needs AVX-512 */
#else
static int fastnn_gemm_cpu_ok(void)
{
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512f");
}
#pragma GCC push_options
#pragma GCC target("avx512f,fma")
#define FASTNN_GEMM_TARGET_PUSHED 1
#endif

/* The packing buffers: one per thread, grown on demand, freed when the
 * thread exits (OpenMP's pooled threads keep theirs between calls). */
typedef struct { void* data; size_t bytes; } fastnn_gemm_buf;
static pthread_key_t fastnn_gemm_key;
static pthread_once_t fastnn_gemm_once = PTHREAD_ONCE_INIT;
static int fastnn_gemm_key_ok = 0;

static void fastnn_gemm_buf_free(void* p)
{
    fastnn_gemm_buf* b = (fastnn_gemm_buf*)p;
    free(b->data);
    free(b);
}

static void fastnn_gemm_key_init(void)
{
    fastnn_gemm_key_ok = pthread_key_create(&fastnn_gemm_key, fastnn_gemm_buf_free) == 0;
}

/* This thread's 64-byte aligned scratch of at least `bytes`, or NULL. */
static void* fastnn_gemm_scratch(size_t bytes)
{
    pthread_once(&fastnn_gemm_once, fastnn_gemm_key_init);
    if (!fastnn_gemm_key_ok)
        return NULL;
    fastnn_gemm_buf* b = (fastnn_gemm_buf*)pthread_getspecific(fastnn_gemm_key);
    if (b == NULL) {
        b = (fastnn_gemm_buf*)calloc(1, sizeof *b);
        if (b == NULL)
            return NULL;
        if (pthread_setspecific(fastnn_gemm_key, b) != 0) {
            free(b);
            return NULL;
        }
    }
    if (b->bytes < bytes) {
        void* p = NULL;
        if (posix_memalign(&p, 64, bytes) != 0)
            return NULL;
        free(b->data);
        b->data = p;
        b->bytes = bytes;
    }
    return b->data;
}

#ifndef FASTNN_GEMM_MR
#define FASTNN_GEMM_MR 8
#endif
#ifndef FASTNN_GEMM_NV
#define FASTNN_GEMM_NV 3
#endif
#ifndef FASTNN_GEMM_KC
#define FASTNN_GEMM_KC 384
#endif
#ifndef FASTNN_GEMM_MC
#define FASTNN_GEMM_MC 96
#endif
#ifndef FASTNN_GEMM_NC
#define FASTNN_GEMM_NC 1024
#endif

#define GEMM_T double
#define GEMM_LANES 8
#define GEMM_NAME fastnn_dgemm
#include "_gemm_impl.h"
#undef GEMM_T
#undef GEMM_LANES
#undef GEMM_NAME

#define GEMM_T float
#define GEMM_LANES 16
#define GEMM_NAME fastnn_sgemm
#include "_gemm_impl.h"
#undef GEMM_T
#undef GEMM_LANES
#undef GEMM_NAME

#ifdef FASTNN_GEMM_TARGET_PUSHED
#pragma GCC pop_options
#endif

#else
/* Not built: the callers see -1 and use BLAS. */
#define FASTNN_OWN_GEMM 0
static const char FASTNN_GEMM_KERNEL[] = "none";
static int fastnn_gemm_cpu_ok(void) { return 0; }
static int fastnn_dgemm(ptrdiff_t M, ptrdiff_t N, ptrdiff_t K, double alpha,
                        const double* A, ptrdiff_t rsa, ptrdiff_t csa,
                        const double* B, ptrdiff_t rsb, ptrdiff_t csb,
                        double beta, double* C, ptrdiff_t ldc) { return -1; }
static int fastnn_sgemm(ptrdiff_t M, ptrdiff_t N, ptrdiff_t K, float alpha,
                        const float* A, ptrdiff_t rsa, ptrdiff_t csa,
                        const float* B, ptrdiff_t rsb, ptrdiff_t csb,
                        float beta, float* C, ptrdiff_t ldc) { return -1; }
#endif

#endif

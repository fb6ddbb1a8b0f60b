/* fastnn's own GEMM (see _gemm_impl.h), in double and float.
 *
 *   int fastnn_dgemm(M, N, K, alpha, A, rsa, csa, B, rsb, csb, beta, C, ldc)
 *
 * C (M x N, row-major, row stride ldc) = alpha A B + beta C, A (M x K) and
 * B (K x N) read through (row stride, column stride) pairs; beta == 0 never
 * reads C. Returns 0, or -1 with nothing written when this build has no own
 * GEMM or its packing buffer can't be had (the caller then uses BLAS).
 *
 *   int fastnn_dgemm_bias_act(M, N, K, alpha, A, rsa, csa, B, rsb, csb,
 *                             beta, C, ldc, bias, act, slope, out, ldo)
 *
 * The same product with a layer's epilogue fused into the store of its last
 * K block: C = Z = alpha A B + beta C + bias (bias: M per-row values, or
 * NULL for none) and, unless out is NULL, out (row stride ldo, not
 * overlapping C) = act(Z), act one of FASTNN_GEMM_RELU (z > 0 ? z : 0),
 * FASTNN_GEMM_LEAKY_RELU (z >= 0 ? z : slope z), FASTNN_GEMM_IDENTITY; -1
 * (nothing written) for any other act. With this build's flags the result is
 * bitwise the product followed by _lecture.pxi's linear_activation_forward.
 * fastnn_sgemm and fastnn_sgemm_bias_act are the float versions.
 *
 * The kernel is chosen by the build's -march alone (the extension is compiled
 * once per ISA target and Python imports the module the CPU can run), so
 * there is no run-time CPU check here:
 *
 *   __AVX512F__          64-byte vectors (zmm), 8 x 3 vectors a tile:
 *                        8 x 24 doubles / 8 x 48 floats;
 *   __AVX2__ && __FMA__  32-byte vectors (ymm), 6 x 2 vectors a tile:
 *                        6 x 8 doubles / 6 x 16 floats;
 *   otherwise            none: FASTNN_OWN_GEMM is 0 and every entry returns -1.
 *
 * Both are the same GCC-vector-extension code (_gemm_impl.h) instantiated
 * with a vector width and a tile that fills the register file without
 * spilling: MR x NV accumulators, NV vectors of B and one broadcast of A --
 * 24 + 3 + 1 of AVX-512's 32 registers, 12 + 2 + 1 of AVX2's 16. The novec
 * ablation build defines FASTNN_NO_OWN_GEMM and gets none. FASTNN_GEMM_KERNEL
 * names what was built, for info().
 *
 * Blocking (MR, NR, KC, MC, NC; NR = NV x lanes): B is packed a KC x NC
 * block at a time, A an MC x KC block; each KC x NR micro-panel of B is
 * reused across the MC rows of A. On a 2-core AMD Zen 4 (32 KiB L1d, 1 MiB
 * L2 a core) the net's products ran within the noise from KC 128 to 512,
 * MC 48 to 192, NC 512 to 4096; what measurably mattered was packing B
 * row by row (the deep net's 20 x 12288 x 209: 12 -> 23 GFLOP/s) and
 * prefetching C's tile (see _gemm_impl.h).
 * -DFASTNN_DGEMM_BLOCKING=mr,nr,kc,mc,nc (and _SGEMM_) override a tuple.
 */
#ifndef FASTNN_GEMM_H
#define FASTNN_GEMM_H
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

/* Activations of the fused epilogue, numbered as _core.pxi numbers them. */
enum { FASTNN_GEMM_RELU = 2, FASTNN_GEMM_LEAKY_RELU = 3, FASTNN_GEMM_IDENTITY = 4 };

#if defined(__x86_64__) && defined(__GNUC__) && !defined(FASTNN_NO_OWN_GEMM) \
    && (defined(__AVX512F__) || (defined(__AVX2__) && defined(__FMA__)))
#define FASTNN_OWN_GEMM 1
#include <pthread.h>

#ifdef __AVX512F__
#define FASTNN_GEMM_VBYTES 64
#define FASTNN_GEMM_ISA "avx512"
#ifndef FASTNN_DGEMM_BLOCKING
#define FASTNN_DGEMM_BLOCKING 8, 24, 384, 96, 1024
#endif
#ifndef FASTNN_SGEMM_BLOCKING
#define FASTNN_SGEMM_BLOCKING 8, 48, 384, 96, 1024
#endif
#else
#define FASTNN_GEMM_VBYTES 32
#define FASTNN_GEMM_ISA "avx2"
#ifndef FASTNN_DGEMM_BLOCKING
#define FASTNN_DGEMM_BLOCKING 6, 8, 256, 96, 1024
#endif
#ifndef FASTNN_SGEMM_BLOCKING
#define FASTNN_SGEMM_BLOCKING 6, 16, 256, 96, 1024
#endif
#endif

/* Fields of a blocking tuple (FASTNN_GEMM_GET expands the tuple first). */
#define FASTNN_GEMM_GET(f, ...) f(__VA_ARGS__)
#define FASTNN_GEMM_MR_(mr, nr, kc, mc, nc) mr
#define FASTNN_GEMM_NR_(mr, nr, kc, mc, nc) nr
#define FASTNN_GEMM_KC_(mr, nr, kc, mc, nc) kc
#define FASTNN_GEMM_MC_(mr, nr, kc, mc, nc) mc
#define FASTNN_GEMM_NC_(mr, nr, kc, mc, nc) nc
#define FASTNN_GEMM_STR_(x) #x
#define FASTNN_GEMM_STR(x) FASTNN_GEMM_STR_(x)
#define FASTNN_GEMM_TILE(tuple) \
    FASTNN_GEMM_STR(FASTNN_GEMM_GET(FASTNN_GEMM_MR_, tuple)) \
    "x" FASTNN_GEMM_STR(FASTNN_GEMM_GET(FASTNN_GEMM_NR_, tuple))

/* What was built, e.g. "avx2 6x8 f64 / 6x16 f32". */
static const char FASTNN_GEMM_KERNEL[] = FASTNN_GEMM_ISA " "
    FASTNN_GEMM_TILE(FASTNN_DGEMM_BLOCKING) " f64 / " FASTNN_GEMM_TILE(FASTNN_SGEMM_BLOCKING) " f32";

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

#define GEMM_T double
#define GEMM_NAME fastnn_dgemm
#define GEMM_BLOCKING FASTNN_DGEMM_BLOCKING
#include "_gemm_impl.h"
#undef GEMM_T
#undef GEMM_NAME
#undef GEMM_BLOCKING

#define GEMM_T float
#define GEMM_NAME fastnn_sgemm
#define GEMM_BLOCKING FASTNN_SGEMM_BLOCKING
#include "_gemm_impl.h"
#undef GEMM_T
#undef GEMM_NAME
#undef GEMM_BLOCKING

#else
/* Not built: the callers see -1 and use BLAS. */
#define FASTNN_OWN_GEMM 0
static const char FASTNN_GEMM_KERNEL[] = "none";
static int fastnn_dgemm(ptrdiff_t M, ptrdiff_t N, ptrdiff_t K, double alpha,
                        const double* A, ptrdiff_t rsa, ptrdiff_t csa,
                        const double* B, ptrdiff_t rsb, ptrdiff_t csb,
                        double beta, double* C, ptrdiff_t ldc) { return -1; }
static int fastnn_sgemm(ptrdiff_t M, ptrdiff_t N, ptrdiff_t K, float alpha,
                        const float* A, ptrdiff_t rsa, ptrdiff_t csa,
                        const float* B, ptrdiff_t rsb, ptrdiff_t csb,
                        float beta, float* C, ptrdiff_t ldc) { return -1; }
static int fastnn_dgemm_bias_act(ptrdiff_t M, ptrdiff_t N, ptrdiff_t K, double alpha,
                                 const double* A, ptrdiff_t rsa, ptrdiff_t csa,
                                 const double* B, ptrdiff_t rsb, ptrdiff_t csb,
                                 double beta, double* C, ptrdiff_t ldc, const double* bias,
                                 int act, double slope, double* out, ptrdiff_t ldo) { return -1; }
static int fastnn_sgemm_bias_act(ptrdiff_t M, ptrdiff_t N, ptrdiff_t K, float alpha,
                                 const float* A, ptrdiff_t rsa, ptrdiff_t csa,
                                 const float* B, ptrdiff_t rsb, ptrdiff_t csb,
                                 float beta, float* C, ptrdiff_t ldc, const float* bias,
                                 int act, float slope, float* out, ptrdiff_t ldo) { return -1; }
#endif

#endif

/* One precision of fastnn's GEMM; included by _gemm.h with
 *   GEMM_T      the element type (double or float)
 *   GEMM_LANES  elements per 64-byte vector (8 or 16)
 *   GEMM_NAME   the name of the entry point
 *   GEMM_MR, GEMM_NV, GEMM_KC, GEMM_MC, GEMM_NC  the blocking
 *
 * C (M x N, row-major, leading dimension ldc) = alpha A B + beta C, where
 * A (M x K) and B (K x N) are read through (row stride, column stride) pairs,
 * so transposed and row- or column-major operands need no copies beyond the
 * packing every blocked GEMM does. The structure is the usual one of
 * Goto/BLIS: B is packed a KC x NC block at a time into NR-wide column
 * panels, A an MC x KC block at a time into MR-tall row panels, and a
 * register-blocked micro-kernel accumulates an MR x NR tile of C in
 * MR * GEMM_NV vector registers over KC steps. The summation order depends
 * only on the shapes, so results are bitwise reproducible.
 */

#define GEMM_CAT_(a, b) a##b
#define GEMM_CAT(a, b) GEMM_CAT_(a, b)
#define GEMM_FN(suffix) GEMM_CAT(GEMM_NAME, suffix)
#define GEMM_NR (GEMM_NV * GEMM_LANES)

typedef GEMM_T GEMM_FN(_vec) __attribute__((vector_size(64)));
/* The same vector, readable and writable at any element-aligned address. */
typedef GEMM_T GEMM_FN(_uvec) __attribute__((vector_size(64), aligned(sizeof(GEMM_T))));

/* Thread-local packing buffers, grown on demand and kept for the thread's
 * life (OpenMP threads are pooled, so this is a few MiB per thread, once). */
static __thread GEMM_T* GEMM_FN(_pack) = NULL;
static __thread size_t GEMM_FN(_pack_size) = 0;

static GEMM_T* GEMM_FN(_buffer)(size_t elements)
{
    if (GEMM_FN(_pack_size) < elements) {
        void* p = NULL;
        if (posix_memalign(&p, 64, elements * sizeof(GEMM_T)) != 0)
            return NULL;
        free(GEMM_FN(_pack));
        GEMM_FN(_pack) = (GEMM_T*)p;
        GEMM_FN(_pack_size) = elements;
    }
    return GEMM_FN(_pack);
}

/* Rows [i0, i0+mc) x columns [p0, p0+kc) of A into MR-tall panels laid out
 * [panel][k][MR], zero-padding the last panel. */
static void GEMM_FN(_pack_a)(ptrdiff_t mc, ptrdiff_t kc, const GEMM_T* A,
                             ptrdiff_t rsa, ptrdiff_t csa, GEMM_T* restrict pa)
{
    for (ptrdiff_t ir = 0; ir < mc; ir += GEMM_MR) {
        ptrdiff_t mr = mc - ir < GEMM_MR ? mc - ir : GEMM_MR;
        GEMM_T* restrict dst = pa + ir * kc;
        for (ptrdiff_t i = 0; i < mr; i++) {
            const GEMM_T* src = A + (ir + i) * rsa;
            for (ptrdiff_t k = 0; k < kc; k++)
                dst[k * GEMM_MR + i] = src[k * csa];
        }
        for (ptrdiff_t i = mr; i < GEMM_MR; i++)
            for (ptrdiff_t k = 0; k < kc; k++)
                dst[k * GEMM_MR + i] = 0;
    }
}

/* Rows [p0, p0+kc) x columns [j0, j0+nc) of B into NR-wide panels laid out
 * [panel][k][NR], zero-padding the last panel. */
static void GEMM_FN(_pack_b)(ptrdiff_t kc, ptrdiff_t nc, const GEMM_T* B,
                             ptrdiff_t rsb, ptrdiff_t csb, GEMM_T* restrict pb)
{
    for (ptrdiff_t jr = 0; jr < nc; jr += GEMM_NR) {
        ptrdiff_t nr = nc - jr < GEMM_NR ? nc - jr : GEMM_NR;
        GEMM_T* restrict dst = pb + jr * kc;
        if (csb == 1 && nr == GEMM_NR) {
            for (ptrdiff_t k = 0; k < kc; k++)
                memcpy(dst + k * GEMM_NR, B + k * rsb + jr, GEMM_NR * sizeof(GEMM_T));
            continue;
        }
        for (ptrdiff_t j = 0; j < nr; j++) {
            const GEMM_T* src = B + (jr + j) * csb;
            for (ptrdiff_t k = 0; k < kc; k++)
                dst[k * GEMM_NR + j] = src[k * rsb];
        }
        for (ptrdiff_t j = nr; j < GEMM_NR; j++)
            for (ptrdiff_t k = 0; k < kc; k++)
                dst[k * GEMM_NR + j] = 0;
    }
}

/* The MR x NR tile C = alpha pa pb + beta C (beta == 0: C is not read, so
 * NaN in an unset C cannot leak). Only the leading mr x nr part is stored. */
static inline void GEMM_FN(_kernel)(ptrdiff_t kc, const GEMM_T* restrict pa,
                                    const GEMM_T* restrict pb, GEMM_T alpha, GEMM_T beta,
                                    GEMM_T* restrict C, ptrdiff_t ldc, ptrdiff_t mr, ptrdiff_t nr)
{
    typedef GEMM_FN(_vec) vec;
    typedef GEMM_FN(_uvec) uvec;
    vec acc[GEMM_MR][GEMM_NV];
#pragma GCC unroll 32
    for (int i = 0; i < GEMM_MR; i++)
#pragma GCC unroll 4
        for (int v = 0; v < GEMM_NV; v++)
            acc[i][v] = (vec){0};
    for (ptrdiff_t k = 0; k < kc; k++) {
        vec b[GEMM_NV];
#pragma GCC unroll 4
        for (int v = 0; v < GEMM_NV; v++)
            b[v] = *(const vec*)(pb + k * GEMM_NR + v * GEMM_LANES);
#pragma GCC unroll 32
        for (int i = 0; i < GEMM_MR; i++) {
            GEMM_T a = pa[k * GEMM_MR + i];
#pragma GCC unroll 4
            for (int v = 0; v < GEMM_NV; v++)
                acc[i][v] += a * b[v];
        }
    }
    if (mr == GEMM_MR && nr == GEMM_NR) {
#pragma GCC unroll 32
        for (int i = 0; i < GEMM_MR; i++)
#pragma GCC unroll 4
            for (int v = 0; v < GEMM_NV; v++) {
                uvec* c = (uvec*)(C + i * ldc + v * GEMM_LANES);
                *c = beta == 0 ? alpha * acc[i][v] : alpha * acc[i][v] + beta * *c;
            }
        return;
    }
    for (ptrdiff_t i = 0; i < mr; i++) {
        GEMM_T row[GEMM_NR];
        memcpy(row, acc[i], sizeof row);
        for (ptrdiff_t j = 0; j < nr; j++)
            C[i * ldc + j] = beta == 0 ? alpha * row[j] : alpha * row[j] + beta * C[i * ldc + j];
    }
}

/* C = alpha A B + beta C; returns 0, or -1 (nothing written) when the packing
 * buffer cannot be allocated. */
static int GEMM_NAME(ptrdiff_t M, ptrdiff_t N, ptrdiff_t K, GEMM_T alpha,
                     const GEMM_T* A, ptrdiff_t rsa, ptrdiff_t csa,
                     const GEMM_T* B, ptrdiff_t rsb, ptrdiff_t csb,
                     GEMM_T beta, GEMM_T* C, ptrdiff_t ldc)
{
    const ptrdiff_t mc_max = GEMM_MC, kc_max = GEMM_KC, nc_max = GEMM_NC;
    GEMM_T* buf = GEMM_FN(_buffer)((size_t)(mc_max + GEMM_MR) * kc_max
                                   + (size_t)(nc_max + GEMM_NR) * kc_max);
    if (buf == NULL)
        return -1;
    GEMM_T* pa = buf;
    GEMM_T* pb = buf + (mc_max + GEMM_MR) * kc_max;
    if (K == 0) {  /* alpha A B is the zero matrix */
        for (ptrdiff_t i = 0; i < M; i++)
            for (ptrdiff_t j = 0; j < N; j++)
                C[i * ldc + j] = beta == 0 ? 0 : beta * C[i * ldc + j];
        return 0;
    }
    for (ptrdiff_t j0 = 0; j0 < N; j0 += nc_max) {
        ptrdiff_t nc = N - j0 < nc_max ? N - j0 : nc_max;
        for (ptrdiff_t p0 = 0; p0 < K; p0 += kc_max) {
            ptrdiff_t kc = K - p0 < kc_max ? K - p0 : kc_max;
            GEMM_T b = p0 == 0 ? beta : 1;  /* later K blocks accumulate */
            GEMM_FN(_pack_b)(kc, nc, B + p0 * rsb + j0 * csb, rsb, csb, pb);
            for (ptrdiff_t i0 = 0; i0 < M; i0 += mc_max) {
                ptrdiff_t mc = M - i0 < mc_max ? M - i0 : mc_max;
                GEMM_FN(_pack_a)(mc, kc, A + i0 * rsa + p0 * csa, rsa, csa, pa);
                for (ptrdiff_t jr = 0; jr < nc; jr += GEMM_NR) {
                    ptrdiff_t nr = nc - jr < GEMM_NR ? nc - jr : GEMM_NR;
                    for (ptrdiff_t ir = 0; ir < mc; ir += GEMM_MR) {
                        ptrdiff_t mr = mc - ir < GEMM_MR ? mc - ir : GEMM_MR;
                        GEMM_FN(_kernel)(kc, pa + ir * kc, pb + jr * kc, alpha, b,
                                         C + (i0 + ir) * ldc + j0 + jr, ldc, mr, nr);
                    }
                }
            }
        }
    }
    return 0;
}

#undef GEMM_NR
#undef GEMM_FN
#undef GEMM_CAT
#undef GEMM_CAT_

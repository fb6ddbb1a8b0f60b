/* One precision of fastnn's GEMM; included by _gemm.h with
 *   GEMM_T         the element type (double or float)
 *   GEMM_NAME      the name of the entry point
 *   GEMM_BLOCKING  its tuple MR, NR, KC, MC, NC (see _gemm.h)
 * and FASTNN_GEMM_VBYTES, the bytes of one SIMD vector (32 or 64).
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
#define GEMM_MR FASTNN_GEMM_GET(FASTNN_GEMM_MR_, GEMM_BLOCKING)
#define GEMM_NR FASTNN_GEMM_GET(FASTNN_GEMM_NR_, GEMM_BLOCKING)
#define GEMM_KC FASTNN_GEMM_GET(FASTNN_GEMM_KC_, GEMM_BLOCKING)
#define GEMM_MC FASTNN_GEMM_GET(FASTNN_GEMM_MC_, GEMM_BLOCKING)
#define GEMM_NC FASTNN_GEMM_GET(FASTNN_GEMM_NC_, GEMM_BLOCKING)
#define GEMM_LANES (FASTNN_GEMM_VBYTES / (int)sizeof(GEMM_T))
#define GEMM_NV (GEMM_NR / GEMM_LANES)

typedef GEMM_T GEMM_FN(_vec) __attribute__((vector_size(FASTNN_GEMM_VBYTES)));
/* The same vector, readable and writable at any element-aligned address. */
typedef GEMM_T GEMM_FN(_uvec) __attribute__((vector_size(FASTNN_GEMM_VBYTES), aligned(sizeof(GEMM_T))));
_Static_assert(GEMM_NR % GEMM_LANES == 0, "NR must be a whole number of vectors");

/* Packs `len` lines of a block, line i at src + i * s_line, element k of it
 * at + k * s_k (k < kc), into R-wide panels laid out [panel][k][R], the last
 * panel zero-padded. A's row panels are its rows (R = MR); B's column panels
 * are its columns (R = NR). */
static inline void GEMM_FN(_pack)(ptrdiff_t len, ptrdiff_t kc, const GEMM_T* src,
                                  ptrdiff_t s_line, ptrdiff_t s_k, ptrdiff_t R,
                                  GEMM_T* restrict dst)
{
    const ptrdiff_t full = len / R * R;
    if (s_line == 1) {
        /* Each k's elements are contiguous: read them line by line in k, one
         * sequential stream, rather than one R-wide column strip at a time
         * (a strip touches kc rows far apart: as many streams and pages). */
        for (ptrdiff_t k = 0; k < kc; k++) {
            const GEMM_T* row = src + k * s_k;
            for (ptrdiff_t p = 0; p < full; p += R)
                memcpy(dst + p * kc + k * R, row + p, R * sizeof(GEMM_T));
            if (full < len) {
                GEMM_T* d = dst + full * kc + k * R;
                for (ptrdiff_t i = 0; i < R; i++)
                    d[i] = full + i < len ? row[full + i] : 0;
            }
        }
        return;
    }
    for (ptrdiff_t p = 0; p < len; p += R, dst += R * kc, src += R * s_line) {
        ptrdiff_t r = len - p < R ? len - p : R;
        for (ptrdiff_t i = 0; i < r; i++)
            for (ptrdiff_t k = 0; k < kc; k++)
                dst[k * R + i] = src[i * s_line + k * s_k];
        for (ptrdiff_t i = r; i < R; i++)
            for (ptrdiff_t k = 0; k < kc; k++)
                dst[k * R + i] = 0;
    }
}

/* What the last K block does to C besides storing it (see
 * fastnn_dgemm_bias_act in _gemm.h): Z = C + bias[row], out = act(Z). */
typedef struct {
    const GEMM_T* bias;  /* per row of C, or NULL */
    int act;             /* FASTNN_GEMM_RELU, _LEAKY_RELU or _IDENTITY */
    GEMM_T slope;        /* leaky_relu's slope for z < 0 */
    GEMM_T* out;         /* act(Z), row stride ldo; NULL: Z alone */
    ptrdiff_t ldo;
} GEMM_FN(_epilogue);

/* relu z > 0 ? z : 0 and leaky_relu z >= 0 ? z : slope z, as _core.pxi's
 * _bias_act has them (so NaN stays 0 / NaN alike), lane by lane through the
 * comparison's all-ones / all-zeros mask. */
static inline GEMM_FN(_vec) GEMM_FN(_act)(GEMM_FN(_vec) z, int act, GEMM_T slope)
{
    typedef __typeof__(z > z) mask;
    if (act == FASTNN_GEMM_RELU)
        return (GEMM_FN(_vec))((z > 0) & (mask)z);
    if (act == FASTNN_GEMM_LEAKY_RELU) {
        mask pos = z >= 0;
        return (GEMM_FN(_vec))((pos & (mask)z) | (~pos & (mask)(slope * z)));
    }
    return z;
}

/* The epilogue on one row of C (n elements from column col), Z already in C. */
static inline void GEMM_FN(_epilogue_row)(const GEMM_FN(_epilogue)* ep, ptrdiff_t row,
                                          ptrdiff_t col, ptrdiff_t n, GEMM_T* restrict C)
{
    GEMM_T* out = ep->out == NULL ? NULL : ep->out + row * ep->ldo + col;
    for (ptrdiff_t j = 0; j < n; j++) {
        GEMM_T z = ep->bias == NULL ? C[j] : C[j] + ep->bias[row];
        C[j] = z;
        if (out != NULL)
            out[j] = ep->act == FASTNN_GEMM_RELU ? (z > 0 ? z : 0)
                   : ep->act == FASTNN_GEMM_LEAKY_RELU ? (z >= 0 ? z : ep->slope * z) : z;
    }
}

/* The MR x NR tile C = alpha pa pb + beta C (beta == 0: C is not read, so
 * NaN in an unset C cannot leak). Only the leading mr x nr part is stored. */
static inline void GEMM_FN(_kernel)(ptrdiff_t kc, const GEMM_T* restrict pa,
                                    const GEMM_T* restrict pb, GEMM_T alpha, GEMM_T beta,
                                    GEMM_T* restrict C, ptrdiff_t ldc, ptrdiff_t mr, ptrdiff_t nr,
                                    const GEMM_FN(_epilogue)* ep, ptrdiff_t row, ptrdiff_t col)
{
    typedef GEMM_FN(_vec) vec;
    typedef GEMM_FN(_uvec) uvec;
    vec acc[GEMM_MR][GEMM_NV];
#pragma GCC unroll 32
    for (int i = 0; i < GEMM_MR; i++)
#pragma GCC unroll 4
        for (int v = 0; v < GEMM_NV; v++)
            acc[i][v] = (vec){0};
    /* Fetch the tile of C (for writing) while the products run: its rows are
     * ldc apart, in lines the hardware prefetcher has no stream for. */
    for (ptrdiff_t i = 0; i < mr; i++) {
        __builtin_prefetch(C + i * ldc, 1);
        __builtin_prefetch(C + i * ldc + nr - 1, 1);
    }
    if (ep != NULL && ep->out != NULL)
        for (ptrdiff_t i = 0; i < mr; i++) {
            __builtin_prefetch(ep->out + (row + i) * ep->ldo + col, 1);
            __builtin_prefetch(ep->out + (row + i) * ep->ldo + col + nr - 1, 1);
        }
    /* Unrolled: the loop's own increments and branch would otherwise take
     * issue slots from the MR x NV multiply-adds of each step. */
#pragma GCC unroll 4
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
    if (mr == GEMM_MR && nr == GEMM_NR && ep == NULL) {
#pragma GCC unroll 32
        for (int i = 0; i < GEMM_MR; i++)
#pragma GCC unroll 4
            for (int v = 0; v < GEMM_NV; v++) {
                uvec* c = (uvec*)(C + i * ldc + v * GEMM_LANES);
                *c = beta == 0 ? alpha * acc[i][v] : alpha * acc[i][v] + beta * *c;
            }
        return;
    }
    if (mr == GEMM_MR && nr == GEMM_NR) {
#pragma GCC unroll 32
        for (int i = 0; i < GEMM_MR; i++) {
#pragma GCC unroll 4
            for (int v = 0; v < GEMM_NV; v++) {
                uvec* c = (uvec*)(C + i * ldc + v * GEMM_LANES);
                vec z = beta == 0 ? alpha * acc[i][v] : alpha * acc[i][v] + beta * *c;
                if (ep->bias != NULL)
                    z += ep->bias[row + i];
                *c = z;
                if (ep->out != NULL)
                    *(uvec*)(ep->out + (row + i) * ep->ldo + col + v * GEMM_LANES) =
                        GEMM_FN(_act)(z, ep->act, ep->slope);
            }
        }
        return;
    }
    for (ptrdiff_t i = 0; i < mr; i++) {
        GEMM_T r[GEMM_NR];
        memcpy(r, acc[i], sizeof r);
        for (ptrdiff_t j = 0; j < nr; j++)
            C[i * ldc + j] = beta == 0 ? alpha * r[j] : alpha * r[j] + beta * C[i * ldc + j];
        if (ep != NULL)
            GEMM_FN(_epilogue_row)(ep, row + i, col, nr, C + i * ldc);
    }
}

/* C = alpha A B + beta C, then the epilogue ep (if not NULL) on the result;
 * returns 0, or -1 (nothing written) when the packing buffer cannot be had. */
static int GEMM_FN(_run)(ptrdiff_t M, ptrdiff_t N, ptrdiff_t K, GEMM_T alpha,
                         const GEMM_T* A, ptrdiff_t rsa, ptrdiff_t csa,
                         const GEMM_T* B, ptrdiff_t rsb, ptrdiff_t csb,
                         GEMM_T beta, GEMM_T* C, ptrdiff_t ldc, const GEMM_FN(_epilogue)* ep)
{
    const ptrdiff_t mc_max = GEMM_MC, nc_max = GEMM_NC;
    if (M <= 0 || N <= 0)
        return 0;
    if (K == 0) {  /* alpha A B is the zero matrix */
        for (ptrdiff_t i = 0; i < M; i++)
            for (ptrdiff_t j = 0; j < N; j++)
                C[i * ldc + j] = beta == 0 ? 0 : beta * C[i * ldc + j];
        for (ptrdiff_t i = 0; ep != NULL && i < M; i++)
            GEMM_FN(_epilogue_row)(ep, i, 0, N, C + i * ldc);
        return 0;
    }
    /* K in equal blocks of at most KC: a thin last block (784 = 2 x 384 + 16)
     * would cost a whole pass over C for a few multiply-adds. */
    const ptrdiff_t kc_max = (K + (K + GEMM_KC - 1) / GEMM_KC - 1) / ((K + GEMM_KC - 1) / GEMM_KC);
    /* Packed A: at most MC rows (rounded up to MR) x KC; packed B: NC x KC. */
    const ptrdiff_t kc_buf = K < kc_max ? K : kc_max;
    const ptrdiff_t lanes = 64 / sizeof(GEMM_T);  /* keeps pb 64-byte aligned */
    const ptrdiff_t a_used = ((M < mc_max ? M : mc_max) + GEMM_MR - 1) / GEMM_MR * GEMM_MR * kc_buf;
    const ptrdiff_t a_elems = (a_used + lanes - 1) / lanes * lanes;
    const ptrdiff_t b_elems = ((N < nc_max ? N : nc_max) + GEMM_NR - 1) / GEMM_NR * GEMM_NR * kc_buf;
    GEMM_T* pa = (GEMM_T*)fastnn_gemm_scratch((size_t)(a_elems + b_elems) * sizeof(GEMM_T));
    if (pa == NULL)
        return -1;
    GEMM_T* pb = pa + a_elems;  /* 64-byte aligned, as the kernel's loads of pb require */
    for (ptrdiff_t j0 = 0; j0 < N; j0 += nc_max) {
        ptrdiff_t nc = N - j0 < nc_max ? N - j0 : nc_max;
        for (ptrdiff_t p0 = 0; p0 < K; p0 += kc_max) {
            ptrdiff_t kc = K - p0 < kc_max ? K - p0 : kc_max;
            GEMM_T b = p0 == 0 ? beta : 1;  /* later K blocks accumulate */
            GEMM_FN(_pack)(nc, kc, B + p0 * rsb + j0 * csb, csb, rsb, GEMM_NR, pb);
            for (ptrdiff_t i0 = 0; i0 < M; i0 += mc_max) {
                ptrdiff_t mc = M - i0 < mc_max ? M - i0 : mc_max;
                GEMM_FN(_pack)(mc, kc, A + i0 * rsa + p0 * csa, rsa, csa, GEMM_MR, pa);
                for (ptrdiff_t jr = 0; jr < nc; jr += GEMM_NR) {
                    ptrdiff_t nr = nc - jr < GEMM_NR ? nc - jr : GEMM_NR;
                    for (ptrdiff_t ir = 0; ir < mc; ir += GEMM_MR) {
                        ptrdiff_t mr = mc - ir < GEMM_MR ? mc - ir : GEMM_MR;
                        GEMM_FN(_kernel)(kc, pa + ir * kc, pb + jr * kc, alpha, b,
                                         C + (i0 + ir) * ldc + j0 + jr, ldc, mr, nr,
                                         p0 + kc == K ? ep : NULL, i0 + ir, j0 + jr);
                    }
                }
            }
        }
    }
    return 0;
}

static int GEMM_NAME(ptrdiff_t M, ptrdiff_t N, ptrdiff_t K, GEMM_T alpha,
                     const GEMM_T* A, ptrdiff_t rsa, ptrdiff_t csa,
                     const GEMM_T* B, ptrdiff_t rsb, ptrdiff_t csb,
                     GEMM_T beta, GEMM_T* C, ptrdiff_t ldc)
{
    return GEMM_FN(_run)(M, N, K, alpha, A, rsa, csa, B, rsb, csb, beta, C, ldc, NULL);
}

static int GEMM_FN(_bias_act)(ptrdiff_t M, ptrdiff_t N, ptrdiff_t K, GEMM_T alpha,
                              const GEMM_T* A, ptrdiff_t rsa, ptrdiff_t csa,
                              const GEMM_T* B, ptrdiff_t rsb, ptrdiff_t csb,
                              GEMM_T beta, GEMM_T* C, ptrdiff_t ldc,
                              const GEMM_T* bias, int act, GEMM_T slope,
                              GEMM_T* out, ptrdiff_t ldo)
{
    if (act != FASTNN_GEMM_RELU && act != FASTNN_GEMM_LEAKY_RELU && act != FASTNN_GEMM_IDENTITY)
        return -1;
    const GEMM_FN(_epilogue) ep = {bias, act, slope, out, ldo};
    return GEMM_FN(_run)(M, N, K, alpha, A, rsa, csa, B, rsb, csb, beta, C, ldc, &ep);
}

#undef GEMM_NR
#undef GEMM_MR
#undef GEMM_NV
#undef GEMM_KC
#undef GEMM_MC
#undef GEMM_NC
#undef GEMM_LANES
#undef GEMM_FN
#undef GEMM_CAT
#undef GEMM_CAT_

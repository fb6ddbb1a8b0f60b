/* One precision of _small.h; included with SM_T (double or float) and
 * SM_NAME(suffix) naming its functions. */

typedef SM_T SM_NAME(uvec) __attribute__((vector_size(SM_BYTES), aligned(sizeof(SM_T))));

#define SM_LANES ((ptrdiff_t)(SM_BYTES / sizeof(SM_T)))

/* C[a * ldc + v * lanes ..] = sum_k P[a * rsp + k * csp] B[k * ldb + v * lanes ..]
 * for R rows a and NV vectors v: one register tile over the whole k loop. */
#define SM_NN_TILE(NAME, R, NV)                                                    \
    static SM_NOINLINE void SM_NAME(nn_tile_##NAME)(ptrdiff_t K,                  \
            const SM_T* P, ptrdiff_t rsp, ptrdiff_t csp,                          \
            const SM_T* B, ptrdiff_t ldb, SM_T* C, ptrdiff_t ldc)                 \
    {                                                                              \
        typedef SM_NAME(uvec) vec;                                                 \
        vec acc[R][NV];                                                            \
        _Pragma("GCC unroll 8") for (int a = 0; a < R; a++)                       \
            _Pragma("GCC unroll 8") for (int v = 0; v < NV; v++) acc[a][v] = (vec){0}; \
        for (ptrdiff_t k = 0; k < K; k++) {                                        \
            vec b[NV];                                                             \
            _Pragma("GCC unroll 8") for (int v = 0; v < NV; v++)                  \
                b[v] = *(const vec*)(B + k * ldb + v * SM_LANES);                  \
            _Pragma("GCC unroll 8") for (int a = 0; a < R; a++) {                 \
                SM_T p = P[a * rsp + k * csp];                                     \
                _Pragma("GCC unroll 8") for (int v = 0; v < NV; v++)              \
                    acc[a][v] += p * b[v];                                         \
            }                                                                      \
        }                                                                          \
        _Pragma("GCC unroll 8") for (int a = 0; a < R; a++)                       \
            _Pragma("GCC unroll 8") for (int v = 0; v < NV; v++)                  \
                *(vec*)(C + a * ldc + v * SM_LANES) = acc[a][v];                   \
    }
SM_NN_TILE(full, SM_R, SM_NV)
SM_NN_TILE(row, 1, SM_NV)
SM_NN_TILE(vec, SM_R, 1)
SM_NN_TILE(1, 1, 1)
#undef SM_NN_TILE

static void SM_NAME(nn)(ptrdiff_t M, ptrdiff_t N, ptrdiff_t K,
                        const SM_T* P, ptrdiff_t rsp, ptrdiff_t csp,  /* IN (M, K), strided */
                        const SM_T* B, ptrdiff_t ldb,                  /* IN (K, N) */
                        SM_T* C, ptrdiff_t ldc)                        /* OUT (M, N) */
{
    ptrdiff_t i0 = 0, r;
    /* Columns outer: B's K x (tile width) block stays in L1 for every row. */
    for (; i0 + SM_NV * SM_LANES <= N; i0 += SM_NV * SM_LANES) {
        for (r = 0; r + SM_R <= M; r += SM_R)
            SM_NAME(nn_tile_full)(K, P + r * rsp, rsp, csp, B + i0, ldb, C + r * ldc + i0, ldc);
        for (; r < M; r++)
            SM_NAME(nn_tile_row)(K, P + r * rsp, rsp, csp, B + i0, ldb, C + r * ldc + i0, ldc);
    }
    for (; i0 + SM_LANES <= N; i0 += SM_LANES) {
        for (r = 0; r + SM_R <= M; r += SM_R)
            SM_NAME(nn_tile_vec)(K, P + r * rsp, rsp, csp, B + i0, ldb, C + r * ldc + i0, ldc);
        for (; r < M; r++)
            SM_NAME(nn_tile_1)(K, P + r * rsp, rsp, csp, B + i0, ldb, C + r * ldc + i0, ldc);
    }
    for (r = 0; r < M && i0 < N; r++)   /* fewer columns than a vector */
        for (ptrdiff_t i = i0; i < N; i++) {
            SM_T s = 0;
            for (ptrdiff_t k = 0; k < K; k++)
                s += P[r * rsp + k * csp] * B[k * ldb + i];
            C[r * ldc + i] = s;
        }
}

static void SM_NAME(nt)(ptrdiff_t M, ptrdiff_t N, ptrdiff_t K,
                        const SM_T* A, ptrdiff_t lda,   /* IN (M, K) */
                        const SM_T* B, ptrdiff_t ldb,   /* IN (N, K) */
                        SM_T* C, ptrdiff_t ldc)         /* OUT (M, N) */
{
    /* K <= FASTNN_SMALL_MAX_COLS: a block of B^T fits on the stack. */
    SM_T T[FASTNN_SMALL_MAX_COLS * SM_NT_BLOCK];
    for (ptrdiff_t q0 = 0; q0 < N; q0 += SM_NT_BLOCK) {
        ptrdiff_t qb = N - q0 < SM_NT_BLOCK ? N - q0 : SM_NT_BLOCK;
        for (ptrdiff_t q = 0; q < qb; q++)
            for (ptrdiff_t i = 0; i < K; i++)
                T[i * qb + q] = B[(q0 + q) * ldb + i];
        SM_NAME(nn)(M, qb, K, A, lda, 1, T, qb, C + q0, ldc);
    }
}

#undef SM_LANES

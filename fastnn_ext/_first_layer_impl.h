/* One precision of _first_layer.h; included with FL_T (double or float) and
 * FL_NAME(suffix) naming its functions. */

typedef FL_T FL_NAME(vec) __attribute__((vector_size(FL_BYTES)));
typedef FL_T FL_NAME(uvec) __attribute__((vector_size(FL_BYTES), aligned(sizeof(FL_T))));

#define FL_LANES ((ptrdiff_t)(FL_BYTES / sizeof(FL_T)))

static inline FL_T FL_NAME(hsum)(FL_NAME(vec) v)
{
    /* Pairwise, in a fixed order. */
    FL_T lanes[FL_BYTES / sizeof(FL_T)];
    memcpy(lanes, &v, sizeof lanes);
    ptrdiff_t n = FL_LANES;
    while (n > 1) {
        n /= 2;
        for (ptrdiff_t l = 0; l < n; l++)
            lanes[l] += lanes[l + n];
    }
    return lanes[0];
}

/* G[j * w + k] = sum_i dZ[j * m + i] Xb[k * m + i] for KR rows k0.. of Xb
 * and R rows j0.. of dZ (R = FL_JR, or 1 for the leftover rows). */
#define FL_DW_TILE(R)                                                              \
    static inline void FL_NAME(dw_tile_##R)(ptrdiff_t m, ptrdiff_t w,             \
                                            const FL_T* dZ, const FL_T* Xb,       \
                                            ptrdiff_t j0, ptrdiff_t k0, ptrdiff_t kr, \
                                            FL_T* G)                               \
    {                                                                              \
        typedef FL_NAME(vec) vec;                                                  \
        typedef FL_NAME(uvec) uvec;                                                \
        vec acc[FL_KR][R];                                                         \
        const ptrdiff_t mv = m / FL_LANES * FL_LANES;                              \
        _Pragma("GCC unroll 8") for (int a = 0; a < FL_KR; a++)                   \
            _Pragma("GCC unroll 8") for (int b = 0; b < R; b++) acc[a][b] = (vec){0}; \
        for (ptrdiff_t i = 0; i < mv; i += FL_LANES) {                             \
            vec x[FL_KR];                                                          \
            _Pragma("GCC unroll 8") for (int a = 0; a < FL_KR; a++)               \
                x[a] = *(const uvec*)(Xb + (k0 + (a < kr ? a : 0)) * m + i);       \
            _Pragma("GCC unroll 8") for (int b = 0; b < R; b++) {                 \
                vec d = *(const uvec*)(dZ + (j0 + b) * m + i);                     \
                _Pragma("GCC unroll 8") for (int a = 0; a < FL_KR; a++)           \
                    acc[a][b] += x[a] * d;                                         \
            }                                                                      \
        }                                                                          \
        for (int a = 0; a < kr; a++)                                               \
            for (int b = 0; b < R; b++) {                                          \
                FL_T s = FL_NAME(hsum)(acc[a][b]);                                 \
                for (ptrdiff_t i = mv; i < m; i++)                                 \
                    s += dZ[(j0 + b) * m + i] * Xb[(k0 + a) * m + i];              \
                G[(j0 + b) * w + k0 + a] = s;                                      \
            }                                                                      \
    }
FL_DW_TILE(FL_JR)
FL_DW_TILE(1)
#undef FL_DW_TILE

static void FL_NAME(dw)(ptrdiff_t n1, ptrdiff_t w, ptrdiff_t m,
                        const FL_T* dZ,  /* IN (n1, m) */
                        const FL_T* Xb,  /* IN (w, m): rows of X */
                        FL_T* G)         /* OUT (n1, w) */
{
    for (ptrdiff_t k0 = 0; k0 < w; k0 += FL_KR) {
        ptrdiff_t kr = w - k0 < FL_KR ? w - k0 : FL_KR;
        ptrdiff_t j0 = 0;
        for (; j0 + FL_JR <= n1; j0 += FL_JR)
            FL_NAME(dw_tile_FL_JR)(m, w, dZ, Xb, j0, k0, kr, G);
        for (; j0 < n1; j0++)
            FL_NAME(dw_tile_1)(m, w, dZ, Xb, j0, k0, kr, G);
    }
}

/* Zp[j * m + i] += sum_k Wt[k * n1 + j] Xb[k * m + i] for R rows j0.. of Zp
 * (R = FL_JB, or 1 for the leftover rows), every example i. Wt is the weight
 * block transposed, so the R weights of one k are adjacent: one base pointer
 * for every broadcast of the k loop. */
#define FL_FWD_TILE(R)                                                             \
    static inline void FL_NAME(fwd_tile_##R)(ptrdiff_t w, ptrdiff_t m,            \
                                             const FL_T* Wt, ptrdiff_t n1,        \
                                             const FL_T* Xb, ptrdiff_t j0, FL_T* Zp) \
    {                                                                              \
        typedef FL_NAME(vec) vec;                                                  \
        typedef FL_NAME(uvec) uvec;                                                \
        const ptrdiff_t mv = m / FL_LANES * FL_LANES;                              \
        for (ptrdiff_t i = 0; i < mv; i += FL_LANES) {                             \
            vec acc[R];                                                            \
            _Pragma("GCC unroll 32") for (int b = 0; b < R; b++)                  \
                acc[b] = *(uvec*)(Zp + (j0 + b) * m + i);                          \
            for (ptrdiff_t k = 0; k < w; k++) {                                    \
                vec x = *(const uvec*)(Xb + k * m + i);                            \
                _Pragma("GCC unroll 32") for (int b = 0; b < R; b++)              \
                    acc[b] += Wt[k * n1 + j0 + b] * x;                             \
            }                                                                      \
            _Pragma("GCC unroll 32") for (int b = 0; b < R; b++)                  \
                *(uvec*)(Zp + (j0 + b) * m + i) = acc[b];                          \
        }                                                                          \
        for (int b = 0; b < R; b++)                                                \
            for (ptrdiff_t i = mv; i < m; i++) {                                   \
                FL_T s = Zp[(j0 + b) * m + i];                                     \
                for (ptrdiff_t k = 0; k < w; k++)                                  \
                    s += Wt[k * n1 + j0 + b] * Xb[k * m + i];                      \
                Zp[(j0 + b) * m + i] = s;                                          \
            }                                                                      \
    }
FL_FWD_TILE(FL_JB)
FL_FWD_TILE(1)
#undef FL_FWD_TILE

static void FL_NAME(fwd)(ptrdiff_t n1, ptrdiff_t w, ptrdiff_t m,
                         const FL_T* Wt,  /* IN (w, n1): the weight block, transposed */
                         const FL_T* Xb,  /* IN (w, m): rows of X */
                         FL_T* Zp)        /* IN/OUT (n1, m) */
{
    ptrdiff_t j0 = 0;
    for (; j0 + FL_JB <= n1; j0 += FL_JB)
        FL_NAME(fwd_tile_FL_JB)(w, m, Wt, n1, Xb, j0, Zp);
    for (; j0 < n1; j0++)
        FL_NAME(fwd_tile_1)(w, m, Wt, n1, Xb, j0, Zp);
}

#undef FL_LANES

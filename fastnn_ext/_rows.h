/* Row sums over a column chunk: the biases' gradients, db[j] = sum_i dZ[j, i].
 *
 *   void fastnn_row_sums_f64(n, ld, x, c0, c1, out)   (and _f32)
 *
 * out[j] (j < n) = the sum of x[j * ld + i] over i in [c0, c1), in one fixed
 * order, the same in every build: eight partial sums s[u] of the elements
 * c0 + 8q + u, then ((s0 + s4) + (s1 + s5)) + ((s2 + s6) + (s3 + s7)), then
 * the tail past the last whole eight, one by one. The eight partial sums are
 * one 8-lane vector; four rows are summed side by side, so four independent
 * chains of vector adds are in flight instead of one (a row of 200 is 25 adds
 * long, each waiting on the last). Written per row in Cython, GCC vectorized
 * the loop over rows instead and spent most of a batch's backward pass (B =
 * 200) shuffling lanes. The novec builds add the same partial sums one lane
 * at a time. Every build gives the same bits, but for the sign of a NaN: GCC
 * may swap a vector add's operands, and x86 returns the first one's NaN.
 */
#ifndef FASTNN_ROWS_H
#define FASTNN_ROWS_H
#include <stddef.h>

#define FASTNN_ROW_SUMS(T, S)                                                              \
    typedef T fastnn_rows_vec_##S                                                          \
        __attribute__((vector_size(8 * sizeof(T)), aligned(sizeof(T))));                  \
                                                                                           \
    /* The fixed reduction of one row's partial sums, then its tail. */                    \
    static inline T fastnn_row_finish_##S(const T* s, const T* row, ptrdiff_t end,         \
                                          ptrdiff_t c1)                                    \
    {                                                                                      \
        T t = ((s[0] + s[4]) + (s[1] + s[5])) + ((s[2] + s[6]) + (s[3] + s[7]));           \
        for (ptrdiff_t i = end; i < c1; i++)                                               \
            t += row[i];                                                                   \
        return t;                                                                          \
    }                                                                                      \
                                                                                           \
    static inline void fastnn_row_sums_##S(ptrdiff_t n, ptrdiff_t ld, const T* x,          \
                                           ptrdiff_t c0, ptrdiff_t c1, T* out)             \
    {                                                                                      \
        const ptrdiff_t end = c0 + (c1 - c0) / 8 * 8;                                      \
        ptrdiff_t j = 0;                                                                   \
        FASTNN_ROWS_BY_VECTOR(                                                             \
        for (; j + 4 <= n; j += 4) {                                                       \
            typedef fastnn_rows_vec_##S vec;                                               \
            const T* r = x + j * ld;                                                       \
            vec s[4] = {{0}, {0}, {0}, {0}};                                               \
            for (ptrdiff_t i = c0; i < end; i += 8) {                                      \
                s[0] += *(const vec*)(r + i);                                              \
                s[1] += *(const vec*)(r + ld + i);                                         \
                s[2] += *(const vec*)(r + 2 * ld + i);                                     \
                s[3] += *(const vec*)(r + 3 * ld + i);                                     \
            }                                                                              \
            for (int q = 0; q < 4; q++) {                                                  \
                T lanes[8];                                                                \
                __builtin_memcpy(lanes, &s[q], sizeof lanes);                              \
                out[j + q] = fastnn_row_finish_##S(lanes, r + q * ld, end, c1);            \
            }                                                                              \
        })                                                                                 \
        for (; j < n; j++) {                                                               \
            const T* r = x + j * ld;                                                       \
            T s[8] = {0};                                                                  \
            for (ptrdiff_t i = c0; i < end; i += 8)                                        \
                for (int u = 0; u < 8; u++)                                                \
                    s[u] += r[i + u];                                                      \
            out[j] = fastnn_row_finish_##S(s, r, end, c1);                                 \
        }                                                                                  \
    }

#ifdef FASTNN_NOVEC
#define FASTNN_ROWS_BY_VECTOR(...)
#else
#define FASTNN_ROWS_BY_VECTOR(...) __VA_ARGS__
#endif

FASTNN_ROW_SUMS(double, f64)
FASTNN_ROW_SUMS(float, f32)

#undef FASTNN_ROWS_BY_VECTOR
#undef FASTNN_ROW_SUMS
#endif

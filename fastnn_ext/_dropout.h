/* Inverted dropout's masks inside a fit, bitwise fastnn.regularization.fit_mask:
 * unit j of the batch's example i (of m_b) is kept at update `step` iff
 *
 *     splitmix64(base + (j * m_b + i) * GOLDEN) >> 11 < threshold,
 *     base = splitmix64(key ^ splitmix64(step * 64 + layer)),
 *
 * threshold = mask_threshold(keep_prob) (Python computes it). All arithmetic
 * is uint64_t, wrapping as NumPy's uint64 does. A counter-based hash: any
 * thread computes any unit's bit, in any order, so the masks do not depend on
 * the thread count. */
#ifndef FASTNN_DROPOUT_H
#define FASTNN_DROPOUT_H
#include <stddef.h>
#include <stdint.h>

#define FASTNN_GOLDEN UINT64_C(0x9E3779B97F4A7C15)

static inline uint64_t fastnn_splitmix64(uint64_t z) {
    z += FASTNN_GOLDEN;
    z = (z ^ (z >> 30)) * UINT64_C(0xBF58476D1CE4E5B9);
    z = (z ^ (z >> 27)) * UINT64_C(0x94D049BB133111EB);
    return z ^ (z >> 31);
}

/* The base of layer `layer`'s mask at update `step`. */
static inline uint64_t fastnn_mask_base(uint64_t key, uint64_t step, uint64_t layer) {
    return fastnn_splitmix64(key ^ fastnn_splitmix64(step * UINT64_C(64) + layer));
}

/* D[i] OUT = the bit of position first + i, for i in [c0, c1) (first = j * m_b: row j). */
static inline void fastnn_mask_row(uint64_t base, uint64_t first, uint64_t threshold,
                                   ptrdiff_t c0, ptrdiff_t c1, unsigned char* D) {
    for (ptrdiff_t i = c0; i < c1; i++)
        D[i] = (fastnn_splitmix64(base + (first + (uint64_t)i) * FASTNN_GOLDEN) >> 11) < threshold;
}

#endif

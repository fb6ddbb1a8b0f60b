/* Products over a narrow block of columns -- a mini-batch's, or a small
 * chunk of examples -- where a GEMM's packing costs as much as its
 * multiply-adds (a 64 x 64 layer on a batch of 32: 131k multiply-adds).
 * Nothing is packed; every operand is read in place from L1:
 *
 *   sm_nn:  C (M x N)  = P (M x K) . B (K x N)     forward W A, and W^T dZ
 *           (P through a (row, column) stride pair, so W^T is W read across;
 *           B and C row-major with N, the columns, the narrow side)
 *   sm_nt:  C (M x N)  = A (M x K) . B (N x K)^T    dW = dZ A^T, K the columns
 *           (B's K x qb transposed blocks go through a stack buffer, then
 *           sm_nn: no horizontal sums)
 *
 * sm_nn keeps an R x NV tile of C in registers -- R rows, NV vectors of
 * columns -- over the whole K loop: per k, NV loads of B (reused by the R
 * rows), R broadcasts of P and R x NV FMAs. GCC vector extensions at the
 * width of the module's target (16 bytes baseline, 32 AVX2, 64 AVX-512);
 * tile sizes fit the register file (32 vector registers with AVX-512, 16
 * below). Each C element is one dot product summed over k in order: results
 * depend only on the shapes, bitwise reproducible.
 *
 * FASTNN_SMALL_MAX_COLS bounds N (sm_nn) and K (sm_nt); the caller routes
 * here only below it (_products.pxi). The novec builds have none.
 */
#ifndef FASTNN_SMALL_H
#define FASTNN_SMALL_H
#include <stddef.h>

#ifdef FASTNN_NOVEC
#define FASTNN_SMALL_PRODUCTS 0
#else
#define FASTNN_SMALL_PRODUCTS 1
#endif
#define FASTNN_SMALL_MAX_COLS 64
/* Columns of B^T per transposed block in sm_nt (stack: 64 x 64 elements). */
#define SM_NT_BLOCK 64

#if defined(__AVX512F__)
#define SM_BYTES 64
#define SM_R 4
#define SM_NV 4
#elif defined(__AVX__)
#define SM_BYTES 32
#define SM_R 4
#define SM_NV 2
#else
#define SM_BYTES 16
#define SM_R 4
#define SM_NV 2
#endif
/* Tiles stay functions of their own: the report's SIMD evidence finds them by name. */
#define SM_NOINLINE __attribute__((noinline))

#if FASTNN_SMALL_PRODUCTS
#define SM_T double
#define SM_NAME(s) sm_##s##_f64
#include "_small_impl.h"
#undef SM_T
#undef SM_NAME

#define SM_T float
#define SM_NAME(s) sm_##s##_f32
#include "_small_impl.h"
#undef SM_T
#undef SM_NAME
#else
/* Never called (FASTNN_SMALL_PRODUCTS is 0): only so the callers compile. */
#define SM_STUB(T, S)                                                                   \
    static inline void sm_nn_##S(ptrdiff_t M, ptrdiff_t N, ptrdiff_t K, const T* P,     \
                                 ptrdiff_t rsp, ptrdiff_t csp, const T* B, ptrdiff_t ldb, \
                                 T* C, ptrdiff_t ldc) {}                                \
    static inline void sm_nt_##S(ptrdiff_t M, ptrdiff_t N, ptrdiff_t K, const T* A,     \
                                 ptrdiff_t lda, const T* B, ptrdiff_t ldb, T* C,        \
                                 ptrdiff_t ldc) {}
SM_STUB(double, f64)
SM_STUB(float, f32)
#undef SM_STUB
#endif

#endif

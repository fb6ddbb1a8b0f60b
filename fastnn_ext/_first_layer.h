/* The first layer's two products over one cache block of X, for a thin
 * layer (n1 small: 1 for logistic regression, 20 for the course's deep net),
 * in the ONEPASS mode of _engine.pxi:
 *
 *   fl_dw:  G  (n1 x w)  = dZ (n1 x m) . Xb^T        the block's dW1 (times m)
 *   fl_fwd: Zp (n1 x m) += Wb (n1 x w) . Xb (w x m)  the next forward's W1 X
 *           (Wb given transposed, w x n1)
 *
 * where Xb is w consecutive rows of X (row stride m). A general GEMM packs
 * both operands and pads n1 to its register tile, which for such thin
 * products costs as much as the multiply-adds; here nothing is packed and
 * the block of X, read once from memory by fl_dw, is still in L2 for fl_fwd.
 *
 * Both vectorize along the examples (i), with GCC vector extensions at the
 * width of the module's target (16 bytes baseline, 32 AVX2, 64 AVX-512), and
 * keep a tile of accumulators in registers: fl_dw a KR x JR tile of dot
 * products (X rows x dZ rows, summed across lanes at the end), fl_fwd a JB x
 * vector tile of Zp (dZ rows x one vector of examples) over the whole block. Tile
 * sizes fit the register file: 32 vector registers with AVX-512, 16 below.
 * Summation order depends only on the shapes: results are bitwise
 * reproducible.
 */
#ifndef FASTNN_FIRST_LAYER_H
#define FASTNN_FIRST_LAYER_H
#include <stddef.h>
#include <string.h>

/* The novec (ablation) builds keep the plain products: no explicit SIMD. */
#ifdef FASTNN_NOVEC
#define FASTNN_FUSED_FIRST_LAYER 0
#else
#define FASTNN_FUSED_FIRST_LAYER 1
#endif

#if defined(__AVX512F__)
#define FL_BYTES 64
#define FL_KR 4
#define FL_JR 5
#define FL_JB 20
#elif defined(__AVX__)
#define FL_BYTES 32
#define FL_KR 3
#define FL_JR 4
#define FL_JB 6
#else
#define FL_BYTES 16
#define FL_KR 3
#define FL_JR 4
#define FL_JB 6
#endif
/* Each tile stays a function of its own: a call per tile is noise next to its
 * hundreds of FMAs, and the report's SIMD evidence finds it by name. */
#define FL_NOINLINE __attribute__((noinline))

#define FL_T double
#define FL_NAME(s) fl_##s##_f64
#include "_first_layer_impl.h"
#undef FL_T
#undef FL_NAME

#define FL_T float
#define FL_NAME(s) fl_##s##_f32
#include "_first_layer_impl.h"
#undef FL_T
#undef FL_NAME

#endif

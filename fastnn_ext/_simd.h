/* Helpers for the fastnn_ext kernels that Cython cannot say itself.
 *
 * FASTNN_LIBMVEC: glibc only marks exp/tanh/log1p as having SIMD variants
 * (libmvec: _ZGVdN4v_exp, _ZGVeN8v_exp, ...) under -ffast-math, whose
 * -ffinite-math-only would break sigmoid(+-1000) = 0/1. Redeclaring them with
 * the same `simd` attribute glibc uses lets gcc vectorize the activation
 * loops with -O3 -fno-math-errno alone, keeping inf/NaN semantics.
 * The novec build leaves this undefined and so calls scalar libm.
 */
#ifndef FASTNN_SIMD_H
#define FASTNN_SIMD_H
#include <math.h>

#if defined(FASTNN_LIBMVEC) && defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wattributes"
__attribute__((simd("notinbranch"))) extern double exp(double);
__attribute__((simd("notinbranch"))) extern float expf(float);
__attribute__((simd("notinbranch"))) extern double tanh(double);
__attribute__((simd("notinbranch"))) extern float tanhf(float);
#pragma GCC diagnostic pop
#endif

#ifndef FASTNN_COMPILE_FLAGS
#define FASTNN_COMPILE_FLAGS "unknown"
#endif
#ifndef FASTNN_VARIANT
#define FASTNN_VARIANT "unknown"
#endif

#ifdef _OPENMP
#include <omp.h>
#define FASTNN_HAVE_OPENMP 1
static int fastnn_max_threads(void) { return omp_get_max_threads(); }
#else
#define FASTNN_HAVE_OPENMP 0
static int fastnn_max_threads(void) { return 1; }
#endif

#endif

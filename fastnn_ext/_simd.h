/* Helpers for the fastnn_ext kernels that Cython cannot say itself.
 *
 * FASTNN_LIBMVEC: glibc only marks exp/tanh/log1p as having SIMD variants
 * (libmvec: _ZGVdN4v_exp, _ZGVeN8v_exp, ...) under -ffast-math, whose
 * -ffinite-math-only would break sigmoid(+-1000) = 0/1. Redeclaring them with
 * the same `simd` attribute glibc uses lets gcc vectorize the activation
 * loops with -O3 -fno-math-errno alone, keeping inf/NaN semantics.
 * FASTNN_LIBMVEC_TANH adds tanh, which libmvec has only since glibc 2.35
 * (setup.py defines each where this glibc links them: a module must never
 * call a vector function its glibc lacks).
 * The novec build leaves both undefined and so calls scalar libm.
 */
#ifndef FASTNN_SIMD_H
#define FASTNN_SIMD_H
#include <math.h>

#if defined(FASTNN_LIBMVEC) && defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wattributes"
__attribute__((simd("notinbranch"))) extern double exp(double);
__attribute__((simd("notinbranch"))) extern float expf(float);
#ifdef FASTNN_LIBMVEC_TANH
__attribute__((simd("notinbranch"))) extern double tanh(double);
__attribute__((simd("notinbranch"))) extern float tanhf(float);
#endif
#pragma GCC diagnostic pop
#endif

/* fastnn_prefetch_span: ask for every 64-byte line of [p, p + bytes) ahead of
 * its use (read, into L2): the mini-batch gather reads rows of X^T and Y^T at
 * random, which no hardware prefetcher can foresee. On x86-64 an asm volatile
 * prefetcht1: gcc 12's dead-code elimination deletes a loop whose body is
 * only __builtin_prefetch (no side effect, finite), and with it every
 * prefetch here. Into L2 rather than L1 (prefetcht0): many rows can be on
 * their way at once without filling L1's few outstanding misses, which
 * stalled the gather (GATHER_AHEAD says what was measured). A no-op where
 * neither is available. */
#include <stddef.h>
static inline void fastnn_prefetch_line(const char* c)
{
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
    __asm__ volatile("prefetcht1 %0" : : "m"(*c));
#elif defined(__GNUC__) || defined(__clang__)
    __builtin_prefetch(c, 0, 2);
#else
    (void)c;
#endif
}

static inline void fastnn_prefetch_span(const void* p, size_t bytes)
{
    const char* c = (const char*)p;
    const char* end = c + bytes;
    if (!bytes)
        return;
    for (; c < end; c += 64)
        fastnn_prefetch_line(c);
    fastnn_prefetch_line(end - 1);  /* the last line when p is not line-aligned */
}

#ifndef FASTNN_COMPILE_FLAGS
#define FASTNN_COMPILE_FLAGS "unknown"
#endif
#ifndef FASTNN_VARIANT
#define FASTNN_VARIANT "unknown"
#endif

#ifdef _OPENMP
#define FASTNN_HAVE_OPENMP 1
#else
#define FASTNN_HAVE_OPENMP 0
#endif

/* The kernel set this module was compiled for, from the compiler's target
 * (setup.py's -march): fastnn.backends.cython picks modules by it. */
#if defined(__AVX512F__) && defined(__AVX512BW__) && defined(__AVX512DQ__) && defined(__AVX512VL__)
#define FASTNN_ISA_NAME "avx512"
#elif defined(__AVX2__) && defined(__FMA__)
#define FASTNN_ISA_NAME "avx2"
#else
#define FASTNN_ISA_NAME "baseline"
#endif

#endif

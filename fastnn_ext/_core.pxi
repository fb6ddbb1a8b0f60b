# Design
# ------
# The whole lecture -- forward, cost, backward, update -- for an L-layer net,
# for float32 and float64 (fused ``floating``), with the training loop itself
# in C. This file is included by every extension module of fastnn_ext; the
# modules differ only in compile flags (setup.py):
#
#   _kernels_<isa>        -O3, vectorized, exp/tanh through glibc's libmvec,
#                         for isa = baseline (x86-64-v2), avx2 (x86-64-v3:
#                         AVX2 + FMA), avx512 (x86-64-v4)
#   _kernels_<isa>_novec  the same with auto-vectorization off, scalar libm and
#                         no own GEMM: the SIMD ablation of that path
#
# and fastnn.backends.cython imports the best one this CPU runs (fastnn_ext._cpu
# says which) -- one build, every x86-64 CPU, no -march=native.
#
# Reading order -- the lecture first, then the engine room:
#
#   _codes.pxi     activation and loss codes (checked against fastnn.activations)
#   _lecture.pxi   THE PAGE: one small kernel per formula of the lecture, named
#                  as on the slides: linear_forward (Z = W A + b), g and g'
#                  side by side, compute_cost, the output layer's dZ, and
#                  linear_backward's dW, db and dA_prev
#   _course2.pxi   THE PAGE of the course's second part: the optimizers' update
#                  rules (update_parameters), L2's term, the learning-rate
#                  decay, inverted dropout with the fit's hashed masks
#                  (_dropout.h: SplitMix64, bitwise fastnn.regularization's)
#   _blas.pxi      BLAS by function pointer: scipy's, or the one Python hands over
#   _products.pxi  the three products of a layer (W A, dZ A^T, W^T dZ) on a
#                  column chunk, one function and one route: loops for thin
#                  ones, register tiles for narrow chunks (_small.h: a
#                  mini-batch's), else the own GEMM (_gemm.h) or BLAS
#   _engine.pxi    THE ENGINE ROOM: the state split by concern (Net, Layer1,
#                  and a Pass per call), column chunks per OpenMP thread, the
#                  deterministic reduction and update, the two ways to train
#                  layer 1 without reading X twice (one pass, Gram), and
#                  mini-batch epochs over gather buffers (_batches.pxi)
#   _updates.pxi   the engine room's updates: partial sums combined, the mean
#                  or the step, shared by the team (STAGE_UPDATE)
#   _net.pxi       _Net: the Python-facing owner of a plan and its arrays
#
# Test entry points (the GEMM on arbitrary operands) are not here: they are
# fastnn_ext._testing (_testing.pyx), its own module.
#
# Kernels assume validated C-contiguous input of one dtype (fastnn.Network
# guarantees it); the Python-facing code only builds the plan.

cimport cython
from cython cimport floating
from cython.parallel cimport prange
from libc.math cimport exp, expf, tanh, tanhf, log, log1p, fabs, sqrt, sqrtf, pow
from libc.stdint cimport int64_t, uint64_t
from libc.stdlib cimport malloc, free
from libc.string cimport memcpy
from cpython.pycapsule cimport PyCapsule_GetPointer, PyCapsule_GetName, PyCapsule_New

import numpy as np

cdef extern from "_simd.h" nogil:
    const char* FASTNN_COMPILE_FLAGS
    const char* FASTNN_VARIANT
    const char* FASTNN_ISA_NAME
    const int FASTNN_HAVE_OPENMP
    void fastnn_prefetch_span(const void* p, size_t nbytes)

#: Flags this module was compiled with (set by setup.py), for reports.
COMPILE_FLAGS = FASTNN_COMPILE_FLAGS.decode()
#: "vec" or "novec".
VARIANT = FASTNN_VARIANT.decode()
#: The instruction set the compiler targeted: "avx512", "avx2" or "baseline".
ISA = FASTNN_ISA_NAME.decode()
#: Whether OpenMP was available at build time (else prange runs serially).
HAVE_OPENMP = bool(FASTNN_HAVE_OPENMP)

# In dependency order (the index above is reading order).
include "_codes.pxi"
include "_blas.pxi"
include "_products.pxi"
include "_lecture.pxi"
include "_course2.pxi"
include "_engine.pxi"
include "_updates.pxi"
include "_batches.pxi"
include "_net.pxi"

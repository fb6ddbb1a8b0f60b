# cython: language_level=3
"""fastnn_ext._testing: entry points the kernels never need, for tests and
benchmarks to reach a kernel module's pieces on operands of their choosing.

Its own small module, compiled once with no -march and no OpenMP: the kernel
modules (``_kernels_<isa>[_novec]``) hold no test code, only their gemm as a C
function pointer (``GEMM_CAPSULES``), which :func:`gemm` calls. Each entry
validates its arguments in full (it is the boundary), so a wrong call raises,
never crashes.
"""

from cpython.pycapsule cimport PyCapsule_GetPointer

import numpy as np

ctypedef void (*dgemm_fn)(Py_ssize_t M, Py_ssize_t N, Py_ssize_t K, double alpha,
                          const double* A, Py_ssize_t rsa, Py_ssize_t csa,
                          const double* B, Py_ssize_t rsb, Py_ssize_t csb,
                          double beta, double* C, Py_ssize_t ldc) noexcept nogil
ctypedef void (*sgemm_fn)(Py_ssize_t M, Py_ssize_t N, Py_ssize_t K, float alpha,
                          const float* A, Py_ssize_t rsa, Py_ssize_t csa,
                          const float* B, Py_ssize_t rsb, Py_ssize_t csb,
                          float beta, float* C, Py_ssize_t ldc) noexcept nogil


def gemm(ext, A, B, C, double alpha, double beta):
    """C = alpha A B + beta C through kernel module ``ext``'s gemm (its own
    kernel or BLAS, per its ``_gemm_route``). A and B: 2-D float64/float32
    arrays (views and transposes welcome) with one unit stride; C:
    C-contiguous, written in place."""
    dtype = C.dtype
    if dtype not in (np.float64, np.float32):
        raise TypeError(f"C must be float64 or float32, got {dtype}")
    if A.dtype != dtype or B.dtype != dtype:
        raise TypeError(f"A, B and C must share one dtype, got {A.dtype}, {B.dtype}, {dtype}")
    if A.ndim != 2 or B.ndim != 2 or C.ndim != 2:
        raise ValueError("A, B and C must be 2-D")
    M, K = A.shape
    if B.shape[0] != K or C.shape != (M, B.shape[1]):
        raise ValueError(f"shapes {A.shape} x {B.shape} -> {C.shape} do not chain")
    if not C.flags.c_contiguous or not C.flags.writeable:
        raise ValueError("C must be C-contiguous and writeable")
    item = dtype.itemsize
    if any(st % item or st < 0 for st in A.strides + B.strides):
        raise ValueError("A and B need non-negative strides in whole elements")
    cdef Py_ssize_t m_ = M, n_ = C.shape[1], k_ = K, ldc = max(1, C.shape[1])
    cdef Py_ssize_t rsa = A.strides[0] // item, csa = A.strides[1] // item
    cdef Py_ssize_t rsb = B.strides[0] // item, csb = B.strides[1] // item
    # An empty operand is never read: give it row-major strides.
    if A.size == 0:
        rsa, csa = max(1, k_), 1
    if B.size == 0:
        rsb, csb = max(1, n_), 1
    # One unit stride, and the other spanning the contiguous side (what BLAS needs).
    if not ((csa == 1 and rsa >= max(1, k_)) or (rsa == 1 and csa >= max(1, m_))):
        raise ValueError(f"A must be row- or column-major (a view of one), got strides {A.strides}")
    if not ((csb == 1 and rsb >= max(1, n_)) or (rsb == 1 and csb >= max(1, k_))):
        raise ValueError(f"B must be row- or column-major (a view of one), got strides {B.strides}")
    if M == 0 or C.shape[1] == 0:
        return
    cdef Py_ssize_t a0 = A.__array_interface__["data"][0]
    cdef Py_ssize_t b0 = B.__array_interface__["data"][0]
    cdef Py_ssize_t c0 = C.__array_interface__["data"][0]
    cdef dgemm_fn dgemm
    cdef sgemm_fn sgemm
    if dtype == np.float64:
        dgemm = <dgemm_fn>PyCapsule_GetPointer(ext.GEMM_CAPSULES["float64"], b"fastnn_ext.gemm_f64")
        with nogil:
            dgemm(m_, n_, k_, alpha, <const double*>a0, rsa, csa, <const double*>b0, rsb, csb,
                  beta, <double*>c0, ldc)
    else:
        sgemm = <sgemm_fn>PyCapsule_GetPointer(ext.GEMM_CAPSULES["float32"], b"fastnn_ext.gemm_f32")
        with nogil:
            sgemm(m_, n_, k_, <float>alpha, <const float*>a0, rsa, csa, <const float*>b0, rsb,
                  csb, <float>beta, <float*>c0, ldc)

# BLAS from scipy, by function pointer: taken from scipy.linalg.cython_blas at
# import, so building needs no scipy and every module calls the OpenBLAS in
# scipy's wheel. fastnn.backends._blas holds its thread count to the fit's.

ctypedef void (*dgemm_t)(char*, char*, int*, int*, int*, double*, double*, int*,
                         double*, int*, double*, double*, int*) noexcept nogil
ctypedef void (*sgemm_t)(char*, char*, int*, int*, int*, float*, float*, int*,
                         float*, int*, float*, float*, int*) noexcept nogil
ctypedef void (*dgemv_t)(char*, int*, int*, double*, double*, int*, double*, int*, double*,
                         double*, int*) noexcept nogil
ctypedef void (*sgemv_t)(char*, int*, int*, float*, float*, int*, float*, int*, float*,
                         float*, int*) noexcept nogil

cdef dgemm_t _dgemm = NULL
cdef sgemm_t _sgemm = NULL
cdef dgemv_t _dgemv = NULL
cdef sgemv_t _sgemv = NULL


cdef void* _capsule(dict capi, str name) except NULL:
    return PyCapsule_GetPointer(capi[name], PyCapsule_GetName(capi[name]))


def _load_blas():
    global _dgemm, _sgemm, _dgemv, _sgemv
    import scipy.linalg.cython_blas as cb
    capi = cb.__pyx_capi__
    _dgemm = <dgemm_t>_capsule(capi, "dgemm")
    _sgemm = <sgemm_t>_capsule(capi, "sgemm")
    _dgemv = <dgemv_t>_capsule(capi, "dgemv")
    _sgemv = <sgemv_t>_capsule(capi, "sgemv")


_load_blas()


cdef inline void blas_gemm(char ta, char tb, int M, int N, int K, floating alpha,
                           floating* A, int lda,  # IN
                           floating* B, int ldb,  # IN
                           floating beta,
                           floating* C, int ldc,  # OUT
                           ) noexcept nogil:
    """Column-major C = alpha op(A) op(B) + beta C."""
    if floating is double:
        _dgemm(&ta, &tb, &M, &N, &K, &alpha, A, &lda, B, &ldb, &beta, C, &ldc)
    else:
        _sgemm(&ta, &tb, &M, &N, &K, &alpha, A, &lda, B, &ldb, &beta, C, &ldc)


cdef inline void blas_gemv(char ta, int M, int N, floating alpha,
                           floating* A, int lda,  # IN
                           floating* x,           # IN
                           floating beta,
                           floating* y,           # OUT
                           ) noexcept nogil:
    """Column-major y = alpha op(A) x + beta y (unit strides)."""
    cdef int one = 1
    if floating is double:
        _dgemv(&ta, &M, &N, &alpha, A, &lda, x, &one, &beta, y, &one)
    else:
        _sgemv(&ta, &M, &N, &alpha, A, &lda, x, &one, &beta, y, &one)

# BLAS by function pointer: taken from scipy.linalg.cython_blas at import, so
# building needs no scipy and every module calls the OpenBLAS in scipy's
# wheel -- until fastnn.backends.cython hands the module another library's
# (_use_blas: fastnn.backends._blas.cython_pointers, a newer OpenBLAS where one
# is installed). fastnn.backends._blas holds their thread counts to the fit's.

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


def _use_blas(size_t dgemm, size_t sgemm, size_t dgemv, size_t sgemv):
    """Call the BLAS functions at these addresses from now on (Fortran dgemm,
    sgemm, dgemv, sgemv with 32-bit integers, as scipy.linalg.cython_blas's);
    0 for any of them: scipy's again, all four. Set before any product runs:
    a call in flight keeps the function it started with."""
    global _dgemm, _sgemm, _dgemv, _sgemv
    if dgemm == 0 or sgemm == 0 or dgemv == 0 or sgemv == 0:
        _load_blas()
        return
    _dgemm, _sgemm = <dgemm_t>dgemm, <sgemm_t>sgemm
    _dgemv, _sgemv = <dgemv_t>dgemv, <sgemv_t>sgemv


def _blas_addresses():
    """The addresses of the dgemm, sgemm, dgemv and sgemv this module calls."""
    return (<size_t>_dgemm, <size_t>_sgemm, <size_t>_dgemv, <size_t>_sgemv)


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

# cython: language_level=3
# fastnn_ext._kernels_avx2: the kernels compiled for avx2, vectorized; see _core.pxi.
include "_core.pxi"

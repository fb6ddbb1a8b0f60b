# cython: language_level=3
# fastnn_ext._kernels_avx512: the kernels compiled for avx512, vectorized; see _core.pxi.
include "_core.pxi"

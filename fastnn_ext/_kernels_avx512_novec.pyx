# cython: language_level=3
# fastnn_ext._kernels_avx512_novec: the kernels compiled for avx512, auto-vectorization off (the SIMD ablation); see _core.pxi.
include "_core.pxi"

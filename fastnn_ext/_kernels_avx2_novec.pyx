# cython: language_level=3
# fastnn_ext._kernels_avx2_novec: the kernels compiled for avx2, auto-vectorization off (the SIMD ablation); see _core.pxi.
include "_core.pxi"

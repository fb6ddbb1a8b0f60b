# cython: language_level=3
# fastnn_ext._kernels_baseline_novec: the kernels compiled for baseline, auto-vectorization off (the SIMD ablation); see _core.pxi.
include "_core.pxi"

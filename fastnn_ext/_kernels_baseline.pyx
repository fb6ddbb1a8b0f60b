# cython: language_level=3
# fastnn_ext._kernels_baseline: the kernels compiled for baseline, vectorized; see _core.pxi.
include "_core.pxi"

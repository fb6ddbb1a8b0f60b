# cython: language_level=3
# Design: fastnn_ext._kernels_novec is the SIMD-ablation build: the same source with auto-vectorization off and scalar libm
# (flags in setup.py). The kernels and their design notes are in _core.pxi,
# included here so both modules compile exactly the same code.
include "_core.pxi"

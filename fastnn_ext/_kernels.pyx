# cython: language_level=3
# Design: fastnn_ext._kernels is the normal build: -O3, auto-vectorized, exp/tanh through glibc's libmvec
# (flags in setup.py). The kernels and their design notes are in _core.pxi,
# included here so both modules compile exactly the same code.
include "_core.pxi"

"""Build fastnn_ext, the Cython kernels of the ``cython`` backend.

Metadata and dependencies live in pyproject.toml; this file only builds the
extensions. The same source (fastnn_ext/_core.pxi) is compiled twice:

* ``fastnn_ext._kernels``: -O3, auto-vectorized, exp/tanh through glibc's
  libmvec (see fastnn_ext/_simd.h), OpenMP if the compiler has it.
* ``fastnn_ext._kernels_novec``: the same with -fno-tree-vectorize
  -fno-tree-slp-vectorize and scalar libm, for the SIMD ablation benchmark.

Environment switches:

* ``FASTNN_DEBUG_BUILD=1``: -O0 -g, Cython boundscheck/wraparound on.
* ``FASTNN_MARCH``: the -march value (default ``native``: the build only runs
  on this CPU kind -- fine for ``pip install`` on the machine that runs it;
  set ``x86-64-v3`` or ``none`` for a portable build).
* ``FASTNN_NO_OPENMP=1``: build without OpenMP (prange runs serially).

The flags each module was compiled with are recorded in it as
``COMPILE_FLAGS`` (a C string define), for ``fastnn.backends.cython.info()``.
"""

import os
import shutil
import subprocess
import sys
import sysconfig
import tempfile

import numpy as np
from Cython.Build import cythonize
from setuptools import Extension, setup

DEBUG = os.environ.get("FASTNN_DEBUG_BUILD", "") not in ("", "0")
MARCH = os.environ.get("FASTNN_MARCH", "native")


def _compiler_accepts(flags):
    """Whether the C compiler compiles and links a tiny OpenMP program with ``flags``."""
    cc = (sysconfig.get_config_var("CC") or "cc").split()
    src = "#include <omp.h>\nint main(void){int s=0;\n#pragma omp parallel reduction(+:s)\ns+=omp_get_thread_num()+1;\nreturn s>0?0:1;}\n"
    with tempfile.TemporaryDirectory() as tmp:
        c_file = os.path.join(tmp, "t.c")
        with open(c_file, "w") as fh:
            fh.write(src)
        try:
            proc = subprocess.run(cc + flags + [c_file, "-o", os.path.join(tmp, "t")],
                                  capture_output=True, timeout=60)
        except (OSError, subprocess.SubprocessError):
            return False
        return proc.returncode == 0


def _is_gcc_like():
    cc = (sysconfig.get_config_var("CC") or "cc").split()[0]
    return sys.platform != "win32" and shutil.which(cc) is not None


GCC_LIKE = _is_gcc_like()
OPENMP = (GCC_LIKE and os.environ.get("FASTNN_NO_OPENMP", "") in ("", "0")
          and _compiler_accepts(["-fopenmp"]))


def _flags(vectorize):
    if not GCC_LIKE:
        return []
    if DEBUG:
        flags = ["-O0", "-g"]
    else:
        # -fno-math-errno lets gcc call libmvec's exp/tanh without errno
        # bookkeeping; -fno-trapping-math lets it if-convert the relu blends.
        # No -ffast-math: sigmoid(+-1000) needs inf arithmetic.
        flags = ["-O3", "-fno-math-errno", "-fno-trapping-math"]
        if MARCH not in ("", "none"):
            flags.append(f"-march={MARCH}")
        if not vectorize:
            flags += ["-fno-tree-vectorize", "-fno-tree-slp-vectorize"]
    if OPENMP:
        flags.append("-fopenmp")
    return flags


def _extension(name, vectorize):
    flags = _flags(vectorize)
    macros = [
        ("FASTNN_COMPILE_FLAGS", '"' + " ".join(flags) + '"'),
        ("FASTNN_VARIANT", '"vec"' if vectorize else '"novec"'),
        ("NPY_NO_DEPRECATED_API", "NPY_1_7_API_VERSION"),
    ]
    if vectorize and not DEBUG:
        macros.append(("FASTNN_LIBMVEC", "1"))
    if not vectorize:
        # The ablation build has no explicit SIMD either: its products go to BLAS.
        macros.append(("FASTNN_NO_OWN_GEMM", "1"))
    return Extension(
        f"fastnn_ext.{name}",
        [f"fastnn_ext/{name}.pyx"],
        include_dirs=[np.get_include(), "fastnn_ext"],
        define_macros=macros,
        extra_compile_args=flags,
        extra_link_args=(["-fopenmp"] if OPENMP else []) + (["-lm"] if GCC_LIKE else []),
        depends=["fastnn_ext/_core.pxi", "fastnn_ext/_simd.h", "fastnn_ext/_gemm.h",
                 "fastnn_ext/_gemm_impl.h"],
    )


DIRECTIVES = {
    "language_level": 3,
    "boundscheck": DEBUG,
    "wraparound": DEBUG,
    "initializedcheck": DEBUG,
    "cdivision": not DEBUG,
    "embedsignature": True,
}

setup(
    ext_modules=cythonize(
        [_extension("_kernels", True), _extension("_kernels_novec", False)],
        compiler_directives=DIRECTIVES,
        # The flags are C defines, not Cython input: rebuild the C when they change.
        force=DEBUG,
    ),
)

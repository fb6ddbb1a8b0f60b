"""Build fastnn_ext, the Cython kernels of the ``cython`` backend.

Metadata and dependencies live in pyproject.toml; this file only builds the
extensions. One source (fastnn_ext/_core.pxi) is compiled once per x86-64
kernel set, and the backend imports the best one the CPU runs -- one build
(or wheel) for every x86-64 CPU:

* ``fastnn_ext._kernels_baseline``: ``-march`` = the build's baseline
  (``FASTNN_MARCH``, default ``x86-64-v2``: SSE4.2).
* ``fastnn_ext._kernels_avx2``: ``-march=x86-64-v3`` (AVX2 + FMA); own GEMM
  with an AVX2 micro-kernel.
* ``fastnn_ext._kernels_avx512``: ``-march=x86-64-v4`` (AVX-512); own GEMM
  with an AVX-512 micro-kernel.
* ``fastnn_ext._kernels_<isa>_novec`` for each: the same with
  -fno-tree-vectorize -fno-tree-slp-vectorize, scalar libm and no own GEMM,
  for the SIMD ablation benchmark of that path.
* ``fastnn_ext._cpu``: no -march; tells the backend what the CPU runs.
* ``fastnn_ext._testing``: no -march; the tests' entry points into a kernel
  module (none of them is in the kernel modules).

All vectorized builds use -O3 and call exp/tanh through glibc's libmvec (see
fastnn_ext/_simd.h), with OpenMP if the compiler has it.

Environment switches:

* ``FASTNN_DEBUG_BUILD=1``: -O0 -g, Cython boundscheck/wraparound on.
* ``FASTNN_MARCH``: the baseline module's -march (default ``x86-64-v2``;
  ``native`` opts in to a build tuned to, and only runnable on, this CPU kind;
  ``none`` passes no -march).
* ``FASTNN_ISAS``: which kernel sets to build, comma-separated, from
  ``baseline,avx2,avx512`` (the default, all three; ``baseline`` is always
  built).
* ``FASTNN_NO_OPENMP=1``: build without OpenMP (prange runs serially).

Non-x86-64 machines build the baseline module only, with no -march.

The flags each module was compiled with are recorded in it as
``COMPILE_FLAGS`` (a C string define), for ``fastnn.backends.cython.info()``.
"""

import os
import platform
import shutil
import subprocess
import sys
import sysconfig
import tempfile

import numpy as np
from Cython.Build import cythonize
from setuptools import Extension, setup

DEBUG = os.environ.get("FASTNN_DEBUG_BUILD", "") not in ("", "0")
MARCH = os.environ.get("FASTNN_MARCH", "x86-64-v2")
X86_64 = platform.machine().lower() in ("x86_64", "amd64")
#: kernel set -> its -march (the baseline's is FASTNN_MARCH).
ISA_MARCH = {"baseline": MARCH, "avx2": "x86-64-v3", "avx512": "x86-64-v4"}
_asked = {isa.strip() for isa in os.environ.get("FASTNN_ISAS", "baseline,avx2,avx512").split(",")
          if isa.strip()}
if _asked - set(ISA_MARCH):
    sys.exit(f"FASTNN_ISAS: unknown kernel sets {sorted(_asked - set(ISA_MARCH))}; "
             f"choose from {list(ISA_MARCH)}")
ISAS = [isa for isa in ISA_MARCH if isa == "baseline" or (X86_64 and isa in _asked)]


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


def _flags(march, vectorize):
    if not GCC_LIKE:
        return []
    if DEBUG:
        flags = ["-O0", "-g"]
    else:
        # -fno-math-errno lets gcc call libmvec's exp/tanh without errno
        # bookkeeping; -fno-trapping-math lets it if-convert the relu blends.
        # No -ffast-math: sigmoid(+-1000) needs inf arithmetic.
        flags = ["-O3", "-fno-math-errno", "-fno-trapping-math"]
        if not vectorize:
            flags += ["-fno-tree-vectorize", "-fno-tree-slp-vectorize"]
    if march not in ("", "none") and X86_64:
        # Also in the debug build: -march decides which instructions may appear.
        flags.append(f"-march={march}")
    if OPENMP:
        flags.append("-fopenmp")
    return flags


def _kernels(isa, vectorize):
    name = f"_kernels_{isa}" + ("" if vectorize else "_novec")
    flags = _flags(ISA_MARCH[isa], vectorize)
    macros = [
        ("FASTNN_COMPILE_FLAGS", '"' + " ".join(flags) + '"'),
        ("FASTNN_VARIANT", '"vec"' if vectorize else '"novec"'),
        ("NPY_NO_DEPRECATED_API", "NPY_1_7_API_VERSION"),
    ]
    if vectorize and not DEBUG:
        macros.append(("FASTNN_LIBMVEC", "1"))
    if not vectorize:
        macros.append(("FASTNN_NOVEC", "1"))
    if not vectorize or isa == "baseline":
        # The ablation build has no explicit SIMD either, and the baseline has
        # no SIMD GEMM kernel: their products go to BLAS.
        macros.append(("FASTNN_NO_OWN_GEMM", "1"))
    return Extension(
        f"fastnn_ext.{name}",
        [f"fastnn_ext/{name}.pyx"],
        include_dirs=[np.get_include(), "fastnn_ext"],
        define_macros=macros,
        extra_compile_args=flags,
        extra_link_args=(["-fopenmp"] if OPENMP else []) + (["-lm"] if GCC_LIKE else []),
        depends=[os.path.join("fastnn_ext", f) for f in sorted(os.listdir("fastnn_ext"))
                 if f.endswith((".pxi", ".h"))],
    )


DIRECTIVES = {
    "language_level": 3,
    "boundscheck": DEBUG,
    "wraparound": DEBUG,
    "initializedcheck": DEBUG,
    "cdivision": not DEBUG,
    "embedsignature": True,
}

#: The x86-64 level the baseline module assumes, for fastnn_ext._cpu to check
#: before importing it (0: "native", trusted as asked; 1: no -march).
_LEVEL = {"x86-64-v4": 4, "x86-64-v3": 3, "x86-64-v2": 2, "x86-64": 1, "none": 1, "": 1,
          "native": 0}
if MARCH not in _LEVEL:
    sys.exit(f"FASTNN_MARCH={MARCH!r}: choose one of {sorted(k for k in _LEVEL if k)}")
EXTENSIONS = [Extension("fastnn_ext._cpu", ["fastnn_ext/_cpu.pyx"],
                        define_macros=[("FASTNN_BASELINE_LEVEL", str(_LEVEL[MARCH]))]),
              Extension("fastnn_ext._testing", ["fastnn_ext/_testing.pyx"])]
EXTENSIONS += [_kernels(isa, vectorize) for isa in ISAS for vectorize in (True, False)]

setup(
    ext_modules=cythonize(
        EXTENSIONS,
        compiler_directives=DIRECTIVES,
        # The flags are C defines, not Cython input: rebuild the C when they change.
        force=DEBUG,
    ),
    # Compile the modules side by side (one per core).
    options={"build_ext": {"parallel": os.cpu_count() or 1}},
)

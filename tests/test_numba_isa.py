"""SIMD in the numba backend's machine code and its ISA paths.

``hot_code()`` gives the assembly of the kernels that run, for the path in
force (``FASTNN_ISA``, default: what the CPU has); ``fastnn.report.simd``
counts it. The lower paths are forced in subprocesses (``FASTNN_ISA`` is read
at import), where they must also train like the numpy oracle.
"""

import json
import os
import re
import subprocess
import sys
import textwrap

import pytest

pytest.importorskip("numba")
nb = pytest.importorskip("fastnn.backends.numba")
from fastnn.backends.numba import config  # noqa: E402
from fastnn.report import simd  # noqa: E402
from _helpers import run_python  # noqa: E402

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


# ------------------------------------------------ SIMD in the code that runs

@pytest.fixture(scope="module")
def asm():
    return nb.hot_code()


@pytest.fixture(scope="module")
def hot(asm):
    return {name: simd.count(text) for name, text in asm.items()}


def _host_isa():
    import llvmlite.binding as ll

    return config.isa_of(ll.get_host_cpu_features().flatten())


def test_hot_code_covers_the_page_and_engine_in_both_dtypes(hot):
    for kernel in ("activation_forward", "activation_backward", "linear_forward",
                   "linear_backward", "dZ_prev", "first_layer_block", "softmax"):
        assert {f"{kernel} float64", f"{kernel} float32"} <= set(hot), sorted(hot)


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("kernel", ["activation_forward", "activation_backward", "exp_array",
                                    "softmax"])
def test_activation_kernels_are_vectorized(hot, kernel, dtype):
    counts = hot[f"{kernel} {dtype}"]
    # exp alone is a dozen FMAs per element: a vectorized body has many packed ops
    # (softmax: the polynomial exp over a row of examples, Numba having no SVML)
    wide = counts["packed_ymm"] + counts["packed_zmm"]
    assert wide >= 12, counts


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("kernel", ["linear_forward", "linear_backward", "dZ_prev",
                                    "first_layer_block"])
def test_layer_kernels_contain_packed_arithmetic(hot, kernel, dtype):
    counts = hot[f"{kernel} {dtype}"]
    assert counts["packed_ymm"] + counts["packed_zmm"] >= 8, counts


def test_activation_forward_keeps_its_simd_loop_in_place(asm):
    # z += b, a = g(z) with z updated in place: LLVM's run-time overlap check
    # between z and a must leave the packed loop as the one that runs. A
    # vectorized loop per activation body shows up as a packed FMA chain.
    fmas = re.findall(r"vfmadd\w*pd\s+[^\n]*%[yz]mm", asm["activation_forward float64"])
    assert len(fmas) >= 24, len(fmas)


def test_auto_path_is_what_the_cpu_has(hot):
    info = nb.info()
    assert info["isa_requested"] in config.ISA_CHOICES
    if info["isa_requested"] != "auto":
        pytest.skip(f"FASTNN_ISA={info['isa_requested']} in this run")
    assert info["isa"] == _host_isa()
    assert ("avx512f" in info["llvm_vector_features"]) == (info["isa"] == "avx512")


def test_avx512_kernels_use_zmm(hot):
    if nb.info()["isa"] != "avx512":
        pytest.skip("not the AVX-512 path (CPU without AVX-512, or FASTNN_ISA lowers it); "
                    "the forced AVX2 path is tested in a subprocess")
    assert sum(c["packed_zmm"] for c in hot.values()) >= 100


def test_isa_feature_parsing():
    assert config.isa_of("+avx2,+fma,+avx512f,+sse2") == "avx512"
    assert config.isa_of("+avx2,+fma,-avx512f") == "avx2"
    assert config.isa_of("+avx2,-fma") == "baseline"
    lowered = config._without_avx512("+avx2,+avx512f,+avx512vl,+amx-tile,+avx10.1,+fma")
    assert lowered == "+avx2,-avx512f,-avx512vl,-amx-tile,-avx10.1,+fma"


_ISA_RUN = textwrap.dedent("""
    import json, re, sys
    import numpy as np
    from fastnn.backends import numba as nb, numpy as npb
    from fastnn._testing import train
    from fastnn.report import simd
    rng = np.random.default_rng(5)
    out = {"info": {k: nb.info()[k] for k in ("isa", "isa_requested", "llvm_cpu")}, "diff": {}}
    for dims, acts, m in (([300, 6, 4, 1], ["tanh", "relu", "sigmoid"], 50),   # fused layer 1
                          ([3, 5, 1], ["leaky_relu", "sigmoid"], 40)):
        X = rng.standard_normal((dims[0], m)); Y = (rng.random((1, m)) < 0.5) * 1.0
        Ws = [rng.standard_normal((n, k)) / np.sqrt(k) for k, n in zip(dims, dims[1:])]
        bs = [0.1 * rng.standard_normal((n, 1)) for n in dims[1:]]
        runs = []
        for backend in (nb, npb):
            W, b = [w.copy() for w in Ws], [v.copy() for v in bs]
            costs = train(backend, W, b, acts, "cross_entropy", X, Y, 0.05, 200, 50, 1, None)
            runs.append(([c for _, c in costs], W + b))
        diff = max(float(np.max(np.abs(p - q) / np.maximum(np.abs(q), 1e-300)))
                   for p, q in zip(runs[0][1], runs[1][1]))
        cost_diff = max(abs(a - c) / abs(c) for a, c in zip(runs[0][0], runs[1][0]))
        out["diff"][str(dims)] = max(diff, cost_diff)
    if sys.argv[1] == "asm":
        hot = nb.hot_code()
        counts = [simd.count(a) for a in hot.values()]
        out["zmm"] = sum(c["packed_zmm"] for c in counts)
        out["ymm"] = sum(c["packed_ymm"] for c in counts)
        # EVEX-only registers (ymm16-31) would mean AVX-512VL code on ymm
        out["evex_regs"] = sum(len(re.findall(r"%[xy]mm(?:1[6-9]|2[0-9]|3[01])\\b", a))
                               for a in hot.values())
    print(json.dumps(out))
""")


def _run_isa(isa, mode):
    env = dict(os.environ, FASTNN_ISA=isa, PYTHONPATH=REPO)
    done = subprocess.run([sys.executable, "-c", _ISA_RUN, mode], env=env, capture_output=True,
                          text=True, timeout=900)
    return done


def test_forced_avx2_path_matches_numpy_and_has_no_zmm():
    if _host_isa() == "baseline":
        pytest.skip("this CPU has no AVX2+FMA")
    done = _run_isa("avx2", "asm")
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout.strip().splitlines()[-1])
    assert out["info"]["isa"] == "avx2" and out["info"]["isa_requested"] == "avx2", out
    assert all(d <= 1e-9 for d in out["diff"].values()), out
    assert out["ymm"] >= 100, out
    assert out["zmm"] == 0 and out["evex_regs"] == 0, out


def test_forced_baseline_path_matches_numpy():
    done = _run_isa("baseline", "no-asm")
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout.strip().splitlines()[-1])
    assert out["info"]["isa"] == "baseline" and out["info"]["llvm_cpu"] == config.BASELINE_CPU
    assert all(d <= 1e-9 for d in out["diff"].values()), out


@pytest.mark.parametrize("isa,expect", [("avx1024", "expected one of"),
                                        ("avx512", "supports at most")])
def test_impossible_isa_is_a_clear_error_at_use(isa, expect):
    if isa == "avx512" and _host_isa() == "avx512":
        pytest.skip("this CPU has AVX-512: asking for it is not asking for more")
    code = ("from fastnn.backends import numba as nb\n"
            "import numpy as np\n"
            "try:\n"
            "    nb.forward([np.ones((1, 1))], [np.zeros((1, 1))], ['sigmoid'], np.ones((1, 2)))\n"
            "except RuntimeError as e:\n"
            "    print('RuntimeError:', e)\n")
    out = run_python(code, env={"FASTNN_ISA": isa, "PYTHONPATH": REPO})
    assert "RuntimeError: FASTNN_ISA=" in out and expect in out, out

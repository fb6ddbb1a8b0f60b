"""Check an installed fastnn wheel (cibuildwheel's test-command; runs from any folder).

What each platform's wheel must carry is written down once, in EXPECTED: the
cython backend with the kernel sets the platform builds (pyproject.toml's
[tool.cibuildwheel] comment), or -- on Windows, where MSVC cannot compile the
kernels -- no extension and the reason why. Either way the wheel trains: a
fit on ``backend="auto"`` must match the numpy backend's costs.
"""

import platform
import sys
import sysconfig

import numpy as np

import fastnn
import fastnn_ext
from fastnn import backends

X86_64 = sysconfig.get_platform().endswith(("x86_64", "amd64"))
#: platform -> the kernel sets its wheel carries (None: no extension, with this reason).
if sys.platform == "win32":
    EXPECTED = {"extension": "MSVC cannot compile fastnn_ext"}
else:
    EXPECTED = {"extension": True,
                "kernel_sets": ["baseline", "avx2", "avx512"] if X86_64 else ["baseline"]}


def main():
    status = backends.available()
    build = fastnn_ext.build_status()
    print(f"fastnn {fastnn.__file__} on {sysconfig.get_platform()} ({platform.machine()})")
    print(f"backends: {status}")
    print(f"build: {build}")
    assert build is not None, "the wheel has no fastnn_ext/_build_status.json"
    for name in ("loops", "per_example", "numpy", "numba"):
        assert status[name] is True, f"{name}: {status[name]}"

    if EXPECTED["extension"] is True:
        assert status["cython"] is True, f"cython: {status['cython']}"
        from fastnn.backends import cython

        built = [isa for isa, ok in cython.built().items() if ok is True]
        assert sorted(built) == sorted(EXPECTED["kernel_sets"]), cython.built()
        print(f"cython: {cython.info()['isa']} kernels of {built}, OpenMP {build['openmp']}")
        expect_auto = "cython"
    else:
        assert isinstance(status["cython"], str) and EXPECTED["extension"] in status["cython"], \
            status["cython"]
        expect_auto = "numba"

    X, Y = fastnn.datasets.planar()
    nets = {name: fastnn.Network([2, 4, 1], hidden_activation="tanh", seed=2, backend=name)
            for name in ("auto", "numpy")}
    for net in nets.values():
        net.fit(X, Y, learning_rate=1.2, num_iterations=300, cost_every=100)
    assert nets["auto"].backend == expect_auto, nets["auto"].backend
    auto, ref = (np.array([c for _, c in nets[n].costs_]) for n in ("auto", "numpy"))
    assert np.allclose(auto, ref, rtol=1e-9, atol=0), (auto, ref)
    print(f"auto -> {expect_auto}: costs {auto.round(6).tolist()} match numpy's")


if __name__ == "__main__":
    main()

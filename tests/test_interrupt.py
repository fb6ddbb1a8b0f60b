"""Ctrl-C stops a fit on every backend: KeyboardInterrupt, the parameters as
they were before the call, the network usable again.

Each case runs in a subprocess that starts a practically endless fit; SIGINT is
sent once it runs. The timeout is a hang guard only: nothing here is timed.
"""

import os
import signal
import subprocess
import sys
import time

import pytest

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX SIGINT")

CHILD = r"""
import signal
import sys
import numpy as np
import fastnn

# Python keeps an inherited "ignore" of SIGINT (a test run started as a background
# job of a non-interactive shell has one): take Ctrl-C's default handler back.
signal.signal(signal.SIGINT, signal.default_int_handler)

backend, cost_every = sys.argv[1], int(sys.argv[2])
X, Y = fastnn.datasets.planar()
net = fastnn.Network([2, 4, 1], hidden_activation="tanh", seed=1, backend=backend)
net.fit(X, Y, learning_rate=0.01, num_iterations=3, cost_every=1)  # JIT and warm-up
before, costs = net.params, net.costs_
try:
    print("fitting", flush=True)
    net.fit(X, Y, learning_rate=0.01, num_iterations=10**12, cost_every=cost_every)
except KeyboardInterrupt:
    same = costs == net.costs_ and all(np.array_equal(net.params[k], v)
                                       for k, v in before.items())
    net.fit(X, Y, learning_rate=0.01, num_iterations=2)  # the fit guard was released
    print("interrupted", "unchanged" if same else "CHANGED", flush=True)
    sys.exit(0)
print("the fit returned", flush=True)
sys.exit(1)
"""


@pytest.mark.parametrize("cost_every", [10**12, 100])
def test_ctrl_c_stops_a_fit_and_keeps_the_parameters(backend, cost_every):
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    child = subprocess.Popen([sys.executable, "-c", CHILD, backend, str(cost_every)],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        assert child.stdout.readline().strip() == "fitting", child.stderr.read()
        time.sleep(1.0)  # let the fit get into its loop (not a measurement)
        child.send_signal(signal.SIGINT)
        try:
            out, err = child.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            pytest.fail(f"the {backend} fit ignored SIGINT: still running 60 s later (hang "
                        f"guard)")
    finally:
        if child.poll() is None:
            child.kill()
            child.communicate()
    assert (child.returncode, out.strip()) == (0, "interrupted unchanged"), err[-2000:]

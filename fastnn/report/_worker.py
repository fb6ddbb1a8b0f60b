"""A training worker in a subprocess, driven over stdin/stdout.

The Numba vectorization ablation needs ``NUMBA_LOOP_VECTORIZE=0`` and
``NUMBA_SLP_VECTORIZE=0``, which Numba reads once at import: so the "off"
kernels live in another process. The benchmark starts this worker (with
vectorization on, or off), it compiles outside any timer, then each line
``run N`` trains N iterations and answers ``done`` -- the parent times that
round trip, identical overhead for both variants.

Protocol: argv = backend workload m dtype. The worker prints one JSON line
``{"first_call_s", "simd_evidence"}`` when ready (the counts of
:func:`fastnn.report.simd.evidence` over the code this process compiled); ``run N`` -> ``done``;
``params`` -> JSON list of the parameters; ``quit`` ends it.
``FASTNN_WORKER_EVIDENCE=0`` skips the evidence (it compiles every hot kernel
again, seconds of work).
"""

import json
import os
import sys
import time


def main(argv):
    backend_name, workload_name, m, dtype = argv[0], argv[1], int(argv[2]), argv[3]
    from fastnn import _testing, backends
    from fastnn.report import workloads as wl

    backend = backends.get(backend_name)
    workload = wl.WORKLOADS.get(workload_name, wl.SWEEP)
    Ws, bs, acts, X, Y = wl.problem(workload, m, dtype)

    def run(n, Ws=Ws, bs=bs):
        _testing.train(backend, Ws, bs, acts, "cross_entropy", X, Y, workload.learning_rate, n, n,
                       None, None, gram=False)

    start = time.perf_counter()
    # Compile on copies: the parameters "params" reports start from the problem's.
    run(1, [W.copy() for W in Ws], [b.copy() for b in bs])
    ready = {"first_call_s": time.perf_counter() - start, "simd_evidence": None}
    if hasattr(backend, "hot_code") and os.environ.get("FASTNN_WORKER_EVIDENCE", "1") == "1":
        from fastnn.report import simd

        try:
            ready["simd_evidence"] = simd.evidence(backend)
        except Exception as exc:  # evidence is a report extra, never a reason to fail timing
            ready["simd_evidence"] = f"unavailable: {type(exc).__name__}: {exc}"
    print(json.dumps(ready, default=str), flush=True)
    for line in sys.stdin:
        command = line.split()
        if not command or command[0] == "quit":
            break
        if command[0] == "run":
            run(int(command[1]))
            print("done", flush=True)
        elif command[0] == "params":
            print(json.dumps([p.tolist() for p in Ws + bs]), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

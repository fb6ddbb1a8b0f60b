"""Cython: the whole training loop in C (``fastnn_ext``), no Python per iteration.

The kernels live in ``fastnn_ext/``: the lecture page (``_lecture.pxi``, one
kernel per formula) and the engine room (``_engine.pxi``: threads, the
one-pass and Gram modes for a huge first layer); ``_core.pxi`` is the index.
This module picks threads, builds the kernels' plan from the arrays Network
hands over, and calls ``on_cost`` between chunks of iterations.

The kernels are built once per x86-64 kernel set (AVX-512, AVX2 + FMA, a
baseline) and the best one this CPU runs is used; :mod:`._cython_paths` picks
it and holds :func:`settings`, which forces another path (``FASTNN_ISA`` does
it from the environment).

Importing this module raises ImportError (``BackendUnavailable``, with the
reason setup.py recorded: no C compiler, MSVC, ...) when ``fastnn_ext`` is not
built; the backend registry then reports ``cython`` as unavailable and why.
"""

import os
import re
import shutil
import subprocess
import time

import numpy as np

from .. import activations as _act
from .. import losses as _losses
from . import _base, _blas
from ._cython_paths import ISAS, built, current, isas, module, settings
from ._cython_paths import active as _active

__all__ = ["forward", "backward", "train", "info", "hot_code", "settings", "current", "isas",
           "built", "ISAS", "DESCRIPTION"]

SLOW = False
COMPILED = True
HAS_GRAM = True

DESCRIPTION = ("Cython fastnn_ext: training loop (and mini-batch epochs) in C, AVX-512/AVX2 "
               "kernels picked at run time, own GEMM and small-product tiles, "
               "libmvec-vectorized activations, OpenMP over examples")

#: threads=None uses all cores from this much work per iteration, counted in
#: multiply-adds (m * sum n_l n_{l-1}) plus ACT_COST per activation value
#: (m * sum n_l: exp/tanh and the elementwise passes); below it the second
#: thread's start and join cost more than it saves. Measured on an idle 2-core
#: machine (a sweep of nets and m, best of 5 runs, 1 vs 2 threads):
#: 2-4-1 tanh gains 1.55x at m = 10 000 (5.2e5 units) and loses at m = 2000
#: (1e5: 0.73x); 20-16-1 gains 1.13x at m = 2000 (9.4e5) and loses at m = 400
#: (1.9e5: 0.5x). The crossover sits near 3e5-5e5 units.
AUTO_THREADS_MIN_WORK = 500_000
ACT_COST = 8
#: The same threshold for one mini-batch's work: each batch starts and joins
#: the team twice (forward, backward) around a serial update, so a second
#: thread pays later. Measured (digits 64-64-10, median of 5, 1 vs 2 threads,
#: little other load): batch 128 (0.68M units) 0.90 vs 1.16 ms per epoch,
#: 256 (1.4M) 0.97 vs 1.11, 512 (2.7M) 1.22 vs 1.05.
MINIBATCH_AUTO_THREADS_MIN_WORK = 2_000_000

#: Layer 1 in one pass over X per iteration (update fused with the next
#: forward) when its output is at most this wide and X is at least ONEPASS_MIN_BYTES.
ONEPASS_MAX_N1 = 32
ONEPASS_MIN_BYTES = 4 << 20
#: ``gram=None`` never allocates a Gram matrix X^T X (m x m) larger than this.
GRAM_MAX_BYTES = 256 << 20
#: A fit returns to Python (where Ctrl-C is noticed) at least this often.
SECONDS_PER_CALL = 0.2
#: Mini-batch training draws the shuffles of one call's epochs at once: at most
#: this many int64 indices (8 MiB).
MAX_ORDER_ENTRIES = 1 << 20


def _n_cores():
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 1


def _work(Ws, m, gram=False):
    """Per-iteration work in multiply-add units (see AUTO_THREADS_MIN_WORK)."""
    work = m * sum(W.size for W in (Ws[1:] if gram else Ws))
    if gram:  # layer 1 costs n_1 m^2 per iteration, not n_1 n_0 m
        work += Ws[0].shape[0] * m * m
    return work + ACT_COST * m * sum(W.shape[0] for W in Ws)


def _threads(ext, threads, Ws, m, gram=False, min_work=None):
    if threads is None:
        min_work = AUTO_THREADS_MIN_WORK if min_work is None else min_work
        threads = _n_cores() if _work(Ws, m, gram) >= min_work else 1
    if not ext.HAVE_OPENMP:
        return 1
    # Every thread gets a non-empty chunk of examples, and one private copy of
    # every dW and db: more threads than cores would only cost memory.
    return max(1, min(int(threads), _n_cores(), m))


def _codes(acts):
    return [_act.CODES[a] for a in acts]


def forward(Ws, bs, acts, X, threads=None):
    ext = _active()
    net = ext._Net(list(Ws), list(bs), _codes(acts), X, _threads(ext, threads, Ws, X.shape[1]))
    with _blas.limit(1):
        net.forward()
    caches, A_prev = [], X
    for W, b, Z, A in zip(Ws, bs, net.Zs, net.As):
        caches.append(((A_prev, W, b), Z))
        A_prev = A
    return A_prev, caches


def backward(AL, Y, caches, acts, loss, threads=None, relu_grad_at_zero=1):
    ext = _active()
    Ws = [c[0][1] for c in caches]
    bs = [c[0][2] for c in caches]
    Zs = [np.ascontiguousarray(c[1]) for c in caches]
    As = [np.ascontiguousarray(c[0][0]) for c in caches[1:]] + [np.ascontiguousarray(AL)]
    X = np.ascontiguousarray(caches[0][0][0])
    net = ext._Net(Ws, bs, _codes(acts), X, _threads(ext, threads, Ws, X.shape[1]), Zs, As,
                   relu_grad_at_zero)
    net.set_Y(np.ascontiguousarray(Y, dtype=X.dtype))
    dWs = [np.empty_like(W) for W in Ws]
    dbs = [np.empty_like(b) for b in bs]
    with _blas.limit(1):
        net.backward_into(_losses.CODES[loss], dWs, dbs)
    return dWs, dbs


def _use_gram(Ws, X, num_iterations, gram=None):
    """Whether layer 1 trains through X^T X: ``gram`` True/False decides; None
    lets the cost model pick it when it saves at least half the work."""
    n0, m = X.shape
    if gram is not None:
        return bool(gram)
    if n0 <= m or m * m * X.itemsize > GRAM_MAX_BYTES:
        return False
    n1 = Ws[0].shape[0]
    # A product with fewer than ~8 output rows is bound by reading X, not by
    # its multiply-adds: price the direct path as if it had 8.
    direct = num_iterations * 2 * max(n1, 8) * n0 * m
    cost = n0 * m * m + num_iterations * n1 * m * m + n1 * n0 * m
    return cost < 0.5 * direct


def _use_onepass(Ws, X):
    onepass = current()["onepass"]
    if onepass is True or onepass is False:
        return onepass
    return Ws[0].shape[0] <= ONEPASS_MAX_N1 and X.nbytes >= ONEPASS_MIN_BYTES


def _calls(count, most=None):
    """Split ``count`` iterations (or epochs) into compiled calls of about
    SECONDS_PER_CALL each, yielding each call's size: between them Python runs,
    so Ctrl-C raises KeyboardInterrupt within a fraction of a second. Sizes
    double from 1 until the time of the calls so far says how many fit
    (``SECONDS_PER_CALL = inf``: one call); ``most`` caps a call's size. The
    caller's work between two yields is what is timed."""
    step = count if SECONDS_PER_CALL == float("inf") else 1
    while count > 0:
        n = min(step, count) if most is None else min(step, count, most)
        t0 = time.perf_counter()
        yield n
        per_item = (time.perf_counter() - t0) / n
        count -= n
        if SECONDS_PER_CALL != float("inf"):
            step = max(1, int(min(2 * step, SECONDS_PER_CALL / max(per_item, 1e-9))))


def _run_interruptibly(net, loss_code, learning_rate, count, last):
    """``net.run`` for ``count`` iterations, in :func:`_calls`. The split
    changes no result (each call resumes exactly where the last stopped)."""
    left = count
    for n in _calls(count):
        left -= n
        net.run(loss_code, learning_rate, n, last and left == 0)


def _epochs_interruptibly(net, loss_code, learning_rate, count, XT, YT, rng):
    """``net.epochs`` for ``count`` epochs, in :func:`_calls`; each call draws
    its epochs' orders (:func:`_base.epoch_orders`: the same draws however the
    epochs are split), at most MAX_ORDER_ENTRIES indices."""
    m = XT.shape[0]
    for n in _calls(count, most=max(1, MAX_ORDER_ENTRIES // m)):
        net.epochs(loss_code, learning_rate, _base.epoch_orders(rng, m, n), XT, YT)


def _train_batches(ext, Ws, bs, codes, loss_code, X, Y, learning_rate, num_iterations,
                   cost_every, threads, on_cost, relu_grad_at_zero, batch_size, rng):
    """Mini-batch training: each iteration one epoch, all its batches in C.

    Two plans share Ws and bs: ``net``, sized for one batch over gather
    buffers, trains; ``full``, over all of X, only computes the recorded
    costs (an epoch's cost is over all m examples, before its first update).
    The batches are gathered from X^T and Y^T, copied once per call.
    """
    if rng is None:
        rng = np.random.default_rng()
    # Both plans run on the batch's thread count: threads=None gives small
    # batches one thread, and no idle OpenMP team spins beside the batch loop.
    T = _threads(ext, threads, Ws, batch_size, min_work=MINIBATCH_AUTO_THREADS_MIN_WORK)
    full = ext._Net(Ws, bs, codes, X, T, None, None, relu_grad_at_zero)
    full.set_Y(Y)
    Xb = np.empty((X.shape[0], batch_size), X.dtype)
    Yb = np.empty((Y.shape[0], batch_size), X.dtype)
    net = ext._Net(Ws, bs, codes, Xb, T, None, None, relu_grad_at_zero)
    net.set_Y(Yb)
    XT, YT = np.ascontiguousarray(X.T), np.ascontiguousarray(Y.T)
    costs = []
    i = 0
    while i < num_iterations:  # i is always a recorded epoch here
        full.forward()
        J = full.cost(loss_code)
        costs.append((i, J))
        if on_cost is not None and on_cost(i, J) is False:
            break
        nxt = _base.next_recorded(i, cost_every, num_iterations)
        _epochs_interruptibly(net, loss_code, learning_rate, nxt - i, XT, YT, rng)
        i = nxt
    return costs


def train(Ws, bs, acts, loss, X, Y, learning_rate, num_iterations, cost_every, threads=None,
          on_cost=None, gram=None, *, relu_grad_at_zero=1, batch_size=None, rng=None):
    ext = _active()
    loss_code = _losses.CODES[loss]
    costs = []
    if num_iterations <= 0:
        return costs
    if batch_size is not None:
        with _blas.limit(1):
            return _train_batches(ext, list(Ws), list(bs), _codes(acts), loss_code, X, Y,
                                  learning_rate, num_iterations, cost_every, threads, on_cost,
                                  relu_grad_at_zero, int(batch_size), rng)
    gram = _use_gram(Ws, X, num_iterations, gram)
    net = ext._Net(list(Ws), list(bs), _codes(acts), X,
                   _threads(ext, threads, Ws, X.shape[1], gram), None, None, relu_grad_at_zero)
    net.set_Y(Y)
    with _blas.limit(1):
        if gram:
            net.enable_gram()
        elif _use_onepass(Ws, X):
            net.enable_onepass(current()["onepass_block_bytes"])
        try:
            net.forward()
            i = 0
            while i < num_iterations:  # i is always a recorded iteration here
                J = net.cost(loss_code)
                costs.append((i, J))
                if on_cost is not None and on_cost(i, J) is False:
                    break
                nxt = _base.next_recorded(i, cost_every, num_iterations)
                # The run ending training skips the forward after its last update.
                _run_interruptibly(net, loss_code, learning_rate, nxt - i,
                                   nxt == num_iterations)
                i = nxt
        finally:
            net.finish_gram(learning_rate)
    return costs


def _march(flags):
    found = re.findall(r"-march=(\S+)", flags)
    return found[-1] if found else "compiler default"


def info():
    """Build and runtime facts for reports.

    ``"isa"`` is the kernel set in use, ``"isas"`` those this CPU runs,
    ``"kernel_sets"`` which were built here (``True``, or why not: see
    setup.py), ``"march"`` the build's baseline (what every module may assume),
    ``"gemm"`` where GEMM-shaped products go, ``"small_products"`` where
    narrow chunks' (a mini-batch's) go.
    """
    from fastnn_ext import _cpu

    state = current()
    ext = _active()
    novec = module(state["isa"], "novec")
    blas = "scipy.linalg.cython_blas" + (f" ({_blas.describe()})" if _blas.describe() else "")
    return {
        "isa": state["isa"],
        "isas": isas(),
        "kernel_sets": built(),
        "march": _march(module("baseline").COMPILE_FLAGS) if built()["baseline"] is True
        else "no baseline kernel set built",
        "march_in_use": _march(ext.COMPILE_FLAGS),
        "cpu_levels": _cpu.features(),
        "variant": state["variant"],
        "compile_flags": ext.COMPILE_FLAGS,
        "compile_flags_novec": novec.COMPILE_FLAGS,
        "openmp": ext.HAVE_OPENMP,
        "blas": blas,
        "gemm": {"own": f"own {ext.GEMM_KERNEL} GEMM (fastnn_ext/_gemm.h)",
                 "auto": f"auto: own {ext.GEMM_KERNEL} GEMM for products with a side below 64, "
                         f"BLAS ({blas}) for wider ones",
                 "blas": f"BLAS: {blas}"}[state["gemm"]],
        "small_products": (f"register tiles (fastnn_ext/_small.h) for chunks of 8 to "
                           f"{ext.SMALL_MAX_COLS} columns" if ext.HAVE_SMALL_PRODUCTS
                           else "none (loops and GEMM only)"),
        "threads_max": _n_cores() if ext.HAVE_OPENMP else 1,
        "auto_threads_min_work": AUTO_THREADS_MIN_WORK,
        "module": ext.__file__,
    }


#: Kernels whose machine code shows whether the math is SIMD: the page's
#: (activation_forward/backward are inlined into these) and the engine's.
HOT = ("linear_activation_forward", "softmax_forward", "output_dZ", "linear_backward",
       "product_nn", "product_nt", "product_tn", "_forward_chunk", "_backward_chunk",
       "_onepass_rows")
_GEMM_KERNEL = re.compile(r"<fastnn_([ds])gemm\w*kernel\w*(?:\.\w+)*>:$")
#: The one-pass first layer's register tiles (_first_layer.h), and the small
#: products' (_small.h: a mini-batch's products).
_FIRST_LAYER = re.compile(r"^fl_(dw|fwd)_tile_(?:full|1)_f(64|32)(?:\.\w+)*$")
_SMALL = re.compile(r"^sm_(nn)_tile_(?:full|row|vec|1)_f(64|32)(?:\.\w+)*$")
_disassembly = {}


def _functions(path):
    """``{symbol: assembly}`` of a shared object, from objdump (cached)."""
    if path not in _disassembly:
        text = subprocess.run([shutil.which("objdump"), "-d", "--no-show-raw-insn", path],
                              capture_output=True, text=True, check=True).stdout
        funcs, name = {}, None
        for line in text.splitlines():
            if line.endswith(">:"):
                name = line[line.index("<") + 1:-2]
                funcs[name] = []
            elif name is not None and line.strip():
                funcs[name].append(line)
        _disassembly[path] = {k: "\n".join(v) for k, v in funcs.items()}
    return _disassembly[path]


def hot_code():
    """``{"<kernel> <dtype>": assembly}`` of the hot kernels of the module in use.

    Raises ``RuntimeError`` without objdump (``apt-get install binutils``).
    """
    if shutil.which("objdump") is None:
        raise RuntimeError("objdump not found (apt-get install binutils)")
    ext = _active()
    stem = ext.__name__.rsplit(".", 1)[1]
    fused = re.compile(rf"^__pyx_fuse_(\d)__pyx_f_10fastnn_ext_{len(stem)}{stem}_"
                       rf"({'|'.join(HOT)})(?:\.\w+)*$")
    out = {}
    for symbol, asm in _functions(ext.__file__).items():
        fm, gm = fused.match(symbol), _GEMM_KERNEL.match(f"<{symbol}>:")
        lm = _FIRST_LAYER.match(symbol)
        sm = _SMALL.match(symbol)
        if fm:  # Cython numbers fused specializations in declaration order: float, double
            key = f"{fm.group(2)} {'float32' if fm.group(1) == '0' else 'float64'}"
        elif gm:
            key = f"gemm_kernel {'float64' if gm.group(1) == 'd' else 'float32'}"
        elif lm:
            key = f"first_layer_{lm.group(1)} {'float64' if lm.group(2) == '64' else 'float32'}"
        elif sm:
            key = f"small_{sm.group(1)} {'float64' if sm.group(2) == '64' else 'float32'}"
        else:
            continue
        out[key] = out[key] + "\n" + asm if key in out else asm
    return dict(sorted(out.items()))

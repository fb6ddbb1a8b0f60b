"""SIMD evidence: what the machine code of a backend's hot kernels does.

The one disassembly counter of fastnn. A compiled backend says *which* code is
hot and runs on this CPU (``hot_code()``, see :mod:`fastnn.backends._base`:
``{"<kernel> <dtype>": assembly text}``); this module says *what* that code is:
how many floating-point arithmetic instructions are packed (SIMD: ``…pd``,
``…ps``) and on which registers (xmm 128, ymm 256, zmm 512 bits), how many are
scalar (``…sd``, ``…ss``: one element at a time), and which glibc libmvec
vector functions (``_ZGVdN4v_exp``: AVX2, 4 doubles; ``_ZGVeN8v_exp``:
AVX-512, 8 doubles) it calls. Moves, shuffles, blends and logic ops are not
arithmetic and are not counted. AT&T (objdump, LLVM) and Intel syntax are
both read.

It imports nothing from the rest of fastnn, so backends' tests can use it.
"""

import re

__all__ = ["count", "evidence", "summarize"]

_FP_OPS = (r"(?:add|sub|mul|div|max|min|sqrt|rcp14|rsqrt14|scalef|getexp|getmant|"
           r"f[n]?m(?:add|sub|addsub|subadd)\d{3}|rndscale|round|cmp)")
_PACKED = re.compile(rf"^\s*(?:[0-9a-f]+:\s+)?v?{_FP_OPS}p[sd]\b")
_SCALAR = re.compile(rf"^\s*(?:[0-9a-f]+:\s+)?v?{_FP_OPS}s[sd]\b")
_MVEC = re.compile(r"\b(_ZGV[a-zA-Z]N\d+v+_\w+?)(?:@plt)?\b")


def count(asm):
    """Instruction counts of one kernel's assembly text.

    Returns
    -------
    dict
        ``{"packed": n, "packed_xmm": n, "packed_ymm": n, "packed_zmm": n,
        "scalar": n, "libmvec_calls": {symbol: n}}``.
    """
    out = {"packed": 0, "packed_xmm": 0, "packed_ymm": 0, "packed_zmm": 0, "scalar": 0,
           "libmvec_calls": {}}
    for line in asm.splitlines():
        if _PACKED.match(line):
            out["packed"] += 1
            for reg in ("zmm", "ymm", "xmm"):
                if reg in line:
                    out[f"packed_{reg}"] += 1
                    break
        elif _SCALAR.match(line):
            out["scalar"] += 1
        if "call" in line:
            mv = _MVEC.search(line)
            if mv:
                calls = out["libmvec_calls"]
                calls[mv.group(1)] = calls.get(mv.group(1), 0) + 1
    return out


def evidence(backend):
    """``{"<kernel> <dtype>": count(...)}`` for a backend module with ``hot_code()``.

    Raises ``AttributeError`` for a backend without it (a pure-Python one).
    """
    return {name: count(asm) for name, asm in backend.hot_code().items()}


def summarize(counts):
    """Totals over several :func:`count` results (one row of a report table)."""
    total = {"packed": 0, "packed_xmm": 0, "packed_ymm": 0, "packed_zmm": 0, "scalar": 0,
             "libmvec_calls": {}}
    for c in counts:
        for key in ("packed", "packed_xmm", "packed_ymm", "packed_zmm", "scalar"):
            total[key] += c[key]
        for sym, n in c["libmvec_calls"].items():
            total["libmvec_calls"][sym] = total["libmvec_calls"].get(sym, 0) + n
    return total

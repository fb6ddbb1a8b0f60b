"""Network files: what :meth:`fastnn.Network.save` writes and :func:`fastnn.load` reads.

A network file is an ``.npz`` archive of plain arrays, never pickles:
``format_version`` (an integer), ``activations`` (strings, one per layer),
``loss`` and ``dtype`` (a string each), ``relu_grad_at_zero`` (an integer,
since format 2; a format-1 file means the lecture's 1), ``backend`` (the name
of the backend it was saved from, since format 3; :func:`load` runs it there
again, or on the fastest one available where that one is missing) and the
course's ``W1, b1, ...``. Every
way a file can be wrong -- not a zip, truncated, empty, a lone ``.npy``, an
entry of the wrong kind, Python objects inside -- is a ``ValueError`` that
names the file and the problem.
"""

import os
import pathlib
import zipfile
import zlib

import numpy as np

FORMAT_VERSION = 3
#: Versions :func:`read` understands.
READS = (1, 2, 3)
SUFFIX = ".npz"
_META = ("format_version", "activations", "loss", "dtype")
#: Entries added after format 1 -> their meaning in a file written before them
#: (a format-1 file: the lecture's ReLU'(0) = 1; before format 3: no backend named).
_OPTIONAL = {"relu_grad_at_zero": 1, "backend": None}
#: Entry -> the first format that always has it.
_SINCE = {"relu_grad_at_zero": 2, "backend": 3}
_ZIP_MAGIC = (b"PK\x03\x04", b"PK\x05\x06")  # a local file header; an empty archive
_NPY_MAGIC = b"\x93NUMPY"


def _npz_path(path):
    """``path`` with the suffix :func:`numpy.savez` gives it."""
    path = pathlib.Path(os.fspath(path))
    return path if path.name.endswith(SUFFIX) else path.with_name(path.name + SUFFIX)


def save(path, params, activations, loss, dtype, relu_grad_at_zero, backend):
    """Write a network file; returns the path written (``.npz`` appended if missing)."""
    path = _npz_path(path)
    np.savez(path, format_version=np.int64(FORMAT_VERSION), activations=np.array(activations),
             loss=np.array(loss), dtype=np.array(dtype),
             relu_grad_at_zero=np.int64(relu_grad_at_zero), backend=np.array(backend), **params)
    return path


def _locate(path):
    """The file :func:`save` wrote for ``path``: ``path`` itself, else ``path.npz``."""
    given = pathlib.Path(os.fspath(path))
    if given.is_file():
        return given
    if _npz_path(given).is_file():
        return _npz_path(given)
    if given.exists():
        raise _refuse(given, "it is a directory" if given.is_dir() else "not a regular file")
    tried = f"{given}" + ("" if _npz_path(given) == given else f" nor {_npz_path(given)}")
    raise FileNotFoundError(f"no fastnn network file: neither {tried} exists")


def _refuse(path, problem):
    return ValueError(f"{path}: not a fastnn network file ({problem})")


def _entries(path):
    """Every array of the archive at ``path``, read with pickles refused."""
    with open(path, "rb") as f:
        head = f.read(6)
    if not head:
        raise _refuse(path, "the file is empty")
    if head == _NPY_MAGIC:
        raise _refuse(path, "it is a single .npy array; Network.save writes an .npz archive")
    if head[:4] not in _ZIP_MAGIC:
        raise _refuse(path, "not an .npz (zip) archive")
    try:
        with np.load(path, allow_pickle=False) as data:
            return {key: _entry(path, data, key) for key in data.files}
    except (zipfile.BadZipFile, zlib.error, EOFError, OSError, KeyError) as exc:
        raise _refuse(path, f"the archive is truncated or corrupt: {type(exc).__name__}: {exc}") \
            from None


def _entry(path, data, key):
    try:
        value = data[key]
    except ValueError as exc:
        # NumPy's own message for an object array proposes unpickling: never pass it on.
        if "allow_pickle" in str(exc) or "pickle" in str(exc):
            raise _refuse(path, f"entry {key!r} holds Python objects; network files hold "
                                f"only numbers and strings") from None
        raise _refuse(path, f"entry {key!r} cannot be read: {exc}") from None
    if not isinstance(value, np.ndarray):
        raise _refuse(path, f"entry {key!r} is not a NumPy array")
    if value.dtype.kind == "O":
        raise _refuse(path, f"entry {key!r} holds Python objects")
    return value


def _string(path, entries, key):
    value = entries[key]
    if value.ndim != 0 or value.dtype.kind != "U":
        raise _refuse(path, f"{key} must be one string; got a {value.dtype} array of shape "
                            f"{value.shape}")
    return str(value)


def read(path):
    """``(path read, {"params", "activations", "loss", "dtype", "relu_grad_at_zero",
    "backend"})`` from a network file (``backend`` None before format 3).

    The content is checked for kind here (strings, an integer version); the
    values themselves are validated by ``Network.from_params``.
    """
    path = _locate(path)
    entries = _entries(path)
    missing = [key for key in _META if key not in entries]
    if missing:
        raise _refuse(path, f"missing {missing}")
    version = entries["format_version"]
    if version.ndim != 0 or version.dtype.kind not in "iu":
        raise _refuse(path, f"format_version must be one integer; got a {version.dtype} array "
                            f"of shape {version.shape}")
    if int(version) not in READS:
        raise ValueError(f"{path} has format_version {int(version)}; this fastnn reads "
                         f"{list(READS)}")
    for key, since in _SINCE.items():
        if key not in entries and int(version) >= since:
            raise _refuse(path, f"missing [{key!r}], which format {int(version)} has")
    convention = entries.get("relu_grad_at_zero", np.int64(_OPTIONAL["relu_grad_at_zero"]))
    if convention.ndim != 0 or convention.dtype.kind not in "iu":
        raise _refuse(path, f"relu_grad_at_zero must be one integer; got a {convention.dtype} "
                            f"array of shape {convention.shape}")
    activations = entries["activations"]
    if activations.ndim != 1 or activations.dtype.kind != "U":
        raise _refuse(path, f"activations must be a 1-D array of strings; got a "
                            f"{activations.dtype} array of shape {activations.shape}")
    return path, {
        "params": {key: value for key, value in entries.items()
                   if key not in _META and key not in _OPTIONAL},
        "activations": [str(a) for a in activations],
        "loss": _string(path, entries, "loss"),
        "dtype": _string(path, entries, "dtype"),
        "relu_grad_at_zero": int(convention),
        "backend": _string(path, entries, "backend") if "backend" in entries else None,
    }


def load(path, *, backend=None, threads=None):
    """Load a network written by :meth:`Network.save`, validating its content.

    ``backend=None`` runs it on the backend it was saved from (``numpy`` for
    a file written before format 3). Where that backend is missing -- saved
    where ``cython`` ran, loaded on a laptop without a compiler -- it runs on
    the fastest backend available (:func:`fastnn.backends.fastest`), with a
    :class:`fastnn.backends.BackendFallbackWarning`. A backend asked for by
    name is used or refused: unavailable, it raises ``ValueError``.

    Raises
    ------
    FileNotFoundError
        If neither ``path`` nor ``path + ".npz"`` exists.
    ValueError
        If the file is not a network :meth:`Network.save` could have written,
        naming the file and what is wrong with it; if ``backend`` is
        unknown or unavailable here.
    """
    from . import _validation, backends
    from .network import Network

    if backend is not None:
        backends.get(backend)  # argument errors are not blamed on the file
    _validation.check_threads(threads)
    path, content = read(path)
    if backend is None:
        backend = backends.fallback(content["backend"] or "numpy", f"the network in {path}")
    try:
        return Network.from_params(content["params"], content["activations"],
                                   loss=content["loss"], backend=backend,
                                   dtype=content["dtype"], threads=threads,
                                   relu_grad_at_zero=content["relu_grad_at_zero"])
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{path}: not a valid fastnn network file: {exc}") from None

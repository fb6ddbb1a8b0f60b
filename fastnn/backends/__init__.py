"""Backend registry: name -> module, imported lazily.

Every backend is one module in this package implementing the contract in
:mod:`fastnn.backends._base`. ``import fastnn`` imports none of them; a backend
whose import fails (Numba missing, ``fastnn_ext`` not built) is reported by
:func:`available` with the reason, and asking for it raises ``ValueError``.

``"auto"`` names no backend of its own: :func:`resolve` turns it into the
fastest one available here (``AUTO_ORDER``), so code that asks for it runs
wherever fastnn installs -- on the compiled extension where it was built, on
Numba where it was not.

Adding a backend is one file plus one line in ``_MODULES``: the test suite
parametrizes over :func:`names` and picks it up without edits.
"""

import importlib
import warnings

__all__ = ["names", "available", "get", "resolve", "having", "fastest", "fallback", "ORACLE",
           "CAPABILITIES", "AUTO", "AUTO_ORDER", "BackendUnavailable",
           "BackendFallbackWarning"]

#: The lecture's ladder, slowest first. name -> module path.
_MODULES = {
    "loops": "fastnn.backends.loops",
    "per_example": "fastnn.backends.per_example",
    "numpy": "fastnn.backends.numpy",
    "numba": "fastnn.backends.numba",
    "cython": "fastnn.backends.cython",
}

#: The backend every other one is checked against.
ORACLE = "loops"

#: The capability flags every backend declares (see :mod:`._base`).
CAPABILITIES = ("SLOW", "COMPILED", "HAS_GRAM", "HAS_OPTIMIZERS", "HAS_SAMPLE_WEIGHT",
                "HAS_POISSON", "HAS_ROW_BATCHES")

#: The name that asks for the fastest backend available here.
AUTO = "auto"
#: What ``"auto"`` picks, first available wins (numpy always is).
AUTO_ORDER = ("cython", "numba", "numpy")


class BackendUnavailable(ImportError):
    """Raised by a backend module that is known not to be installed here
    (``fastnn_ext`` not built); its message is the whole reason, as
    :func:`available` reports it."""

_loaded = {}
_errors = {}


def names():
    """All backend names fastnn knows, available or not, slowest first."""
    return list(_MODULES)


def _load(name):
    if name in _loaded:
        return _loaded[name]
    if name in _errors:
        return None
    try:
        module = importlib.import_module(_MODULES[name])
    except BackendUnavailable as exc:  # says why itself, e.g. "not built: no C compiler"
        _errors[name] = str(exc)
        return None
    except ImportError as exc:  # a missing optional dependency or a broken build
        _errors[name] = f"{type(exc).__name__}: {exc}"
        return None
    _loaded[name] = module
    return module


def available():
    """``{name: True | "reason it is unavailable"}`` for every known backend."""
    return {name: True if _load(name) is not None else _errors[name] for name in _MODULES}


def resolve(name):
    """The backend ``name`` stands for: ``name`` itself, or for ``"auto"`` the
    first of ``AUTO_ORDER`` available here.

    An unavailable backend's name is returned as it is (:func:`get` says why).

    Raises
    ------
    TypeError
        If ``name`` is not a string.
    ValueError
        If ``name`` is neither a known backend nor ``"auto"``; the message
        lists the choices.
    """
    choices = names() + [AUTO]
    if not isinstance(name, str):
        raise TypeError(f"backend must be a str, one of {choices}; got {type(name).__name__}")
    if name == AUTO:
        status = available()
        return next(n for n in AUTO_ORDER if status[n] is True)
    if name not in _MODULES:
        raise ValueError(f"unknown backend {name!r}; expected one of {choices}")
    return name


def get(name):
    """The backend module called ``name`` (``"auto"``: see :func:`resolve`).

    Raises
    ------
    TypeError
        If ``name`` is not a string.
    ValueError
        If ``name`` is unknown or its backend cannot be imported here; the
        message lists the choices and, for an unavailable one, why.
    """
    name = resolve(name)
    module = _load(name)
    if module is None:
        usable = [n for n, ok in available().items() if ok is True]
        raise ValueError(
            f"backend {name!r} is unavailable ({_errors[name]}); available backends: {usable}"
        )
    return module


def having(capability, value=True):
    """The available backends whose ``capability`` (one of :data:`CAPABILITIES`)
    is ``value``, slowest first; unavailable backends are never listed."""
    if capability not in CAPABILITIES:
        raise ValueError(f"unknown capability {capability!r}; expected one of {CAPABILITIES}")
    return [n for n in _MODULES if _load(n) is not None
            and bool(getattr(_loaded[n], capability, False)) is bool(value)]


# -- where a backend is missing ---------------------------------------------------------

class BackendFallbackWarning(UserWarning):
    """A network made with a backend missing here runs on another one."""


def fastest():
    """The fastest backend available here: the first of :data:`AUTO_ORDER`
    (what ``"auto"`` resolves to)."""
    return resolve(AUTO)


def fallback(name, what):
    """``name`` if it is available here, else :func:`fastest` with a
    :class:`BackendFallbackWarning` saying so; ``what`` names the object
    being loaded ("a pickled Network")."""
    if name in _MODULES and _load(name) is not None:
        return name
    other = fastest()
    why = _errors.get(name, "a backend this fastnn does not know")
    warnings.warn(f"{what} was made with backend {name!r}, which is unavailable here "
                  f"({why}); it runs on {other!r}, the fastest backend available here",
                  BackendFallbackWarning, stacklevel=3)
    return other

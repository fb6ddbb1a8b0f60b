"""Shared fixtures: backends parametrized from the registry.

A backend that is unavailable here is skipped with its reason -- unless it is
required, in which case its absence fails the run instead of hiding it.
``FASTNN_REQUIRE_BACKENDS`` (comma-separated names) says which are required;
under CI (``CI=true``) it defaults to the compiled ones, so a broken build can
never turn into a green run of skips. (The rule lives in ``_helpers``, which
test modules about one backend call too: ``require_backend``.)
"""

import pytest

import fastnn
from fastnn import backends

from _helpers import REQUIRED
from _helpers import usable as _usable

ALL_BACKENDS = backends.names()


@pytest.fixture(params=ALL_BACKENDS)
def backend(request):
    """Every backend fastnn knows."""
    _usable(request.param)
    return request.param


@pytest.fixture(params=[b for b in ALL_BACKENDS if b != backends.ORACLE])
def fast_backend(request):
    """Every backend but the loops oracle (for work too slow for it)."""
    _usable(request.param)
    return request.param


def _slow(name):
    """A backend's ``SLOW`` capability; an unavailable one counts as fast, so it is
    still parametrized (and skipped or failed by ``_usable`` with its reason)."""
    return backends.available()[name] is True and backends.get(name).SLOW


@pytest.fixture(params=[b for b in ALL_BACKENDS if not _slow(b)])
def vector_backend(request):
    """The backends vectorized across examples (for thousands of iterations)."""
    _usable(request.param)
    return request.param


def test_required_backends_are_known():
    assert REQUIRED <= set(ALL_BACKENDS), f"FASTNN_REQUIRE_BACKENDS names unknown {REQUIRED}"


@pytest.fixture
def planar():
    return fastnn.datasets.planar()


# Spread over cores (pytest-xdist, the README's ``pytest -n auto``), each file
# runs whole on one worker: the packaging tests' module fixtures build the
# sdist and the wheel once (in the repository, not by two workers at once),
# and every module's fixtures are made once. xdist's default ``load`` would
# scatter a file's tests over the workers, so here it means ``loadfile``; an
# explicit other --dist (worksteal, loadgroup, ...) is left as asked.
@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config, log):
    if config.getvalue("dist") == "load":
        from xdist.scheduler import LoadFileScheduling

        return LoadFileScheduling(config, log)
    return None


# The packaging tests build, repair and install a wheel and an sdist in fresh
# venvs: about five minutes, in one file on one worker. Collected first, they
# start at once and the other workers take every other file meanwhile,
# instead of all waiting on them at the end.
_FIRST = frozenset({"test_packaging.py"})


def pytest_collection_modifyitems(items):
    items.sort(key=lambda item: item.path.name not in _FIRST)  # stable: the rest keep their order

"""fastnn's benchmark suite (pytest-benchmark).

One copy of the code in two roles: in a checkout it is the ``benchmarks/``
folder that ``python -m pytest benchmarks`` runs; installed, it is the package
``fastnn.benchmarks`` (pyproject.toml maps the name onto this folder) that
``fastnn report`` and ``fastnn bench`` run from any install.
"""

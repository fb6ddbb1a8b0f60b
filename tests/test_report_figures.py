"""Every figure of a report holding every section, rendered at once.

matplotlib's default log-axis labels are mathtext ("$\\mathdefault{10^{2}}$"):
rendering them loads its math fonts and, where its font cache lists none of
them (one written by a Debian matplotlib of the same version), prints a
"findfont: ... not found" line per font on the report's console. The report
labels its log axes in plain text (``plots.plain_log_labels``).
"""

import matplotlib.mathtext
import pytest

pytest.importorskip("sklearn")

from test_dropin_bench import _data as _dropin_data  # noqa: E402
from test_minibatch_bench import _minibatch_data  # noqa: E402
from test_report import _report  # noqa: E402
from test_report_optimizers import _optimizer_data  # noqa: E402

FIGURES = {"ladder.png", "scaling.png", "ablation.png", "efficiency.png", "minibatch.png",
           "optim_cost.png", "optim_adam.png", "optim_digits.png", "dropin.png"}


def test_no_figure_of_the_report_renders_mathtext(tmp_path, monkeypatch):
    parsed = []
    original = matplotlib.mathtext.MathTextParser.parse

    def parse(self, s, *args, **kwargs):
        parsed.append(s)
        return original(self, s, *args, **kwargs)

    monkeypatch.setattr(matplotlib.mathtext.MathTextParser, "parse", parse)
    data = _minibatch_data()  # the first sections' groups and the mini-batch ones
    data["benchmarks"] += _optimizer_data()["benchmarks"] + _dropin_data()["benchmarks"]
    _, pngs = _report(tmp_path, data)
    assert pngs == FIGURES
    assert parsed == [], sorted(set(parsed))[:5]

"""Plain-text labels for the report's log axes, and the one way its figures
are laid out (:func:`tight`), which applies them before any text is measured.

matplotlib's own log-axis labels are mathtext ("$\\mathdefault{10^{2}}$"):
measuring or drawing them loads its math fonts, and where its font cache
lists none of them (one written by a Debian matplotlib of the same version),
it prints a "findfont: ... not found" line for each on the report's console.
"""

import math

from matplotlib.ticker import FuncFormatter, LogFormatter, LogFormatterSciNotation

__all__ = ["decade_label", "plain_log_labels", "tight"]

_SUPERSCRIPT = str.maketrans("-0123456789", "⁻⁰¹²³⁴⁵⁶⁷⁸⁹")


def tight(fig, **layout):
    """``fig.tight_layout(**layout)`` with its log axes labelled in plain text
    first (tight_layout measures every label)."""
    plain_log_labels(fig)
    fig.tight_layout(**layout)


def plain_log_labels(fig):
    """Every log axis of ``fig`` still on matplotlib's default labels (mathtext:
    see :func:`decade_label`) labelled in plain text: decades as "10³", the
    minor ticks it labels (an axis spanning less than a decade or two) as
    LogFormatter writes them, "2", "30"."""
    for ax in fig.axes:
        for axis in (ax.xaxis, ax.yaxis):
            if axis.get_scale() != "log":
                continue
            if isinstance(axis.get_major_formatter(), LogFormatterSciNotation):
                axis.set_major_formatter(FuncFormatter(decade_label))
            if isinstance(axis.get_minor_formatter(), LogFormatterSciNotation):
                axis.set_minor_formatter(LogFormatter(labelOnlyBase=False))


def decade_label(value, _position=None):
    """A log axis' major tick as plain text: "10⁻³" for a decade, else as
    ``%g`` writes it."""
    exponent = round(math.log10(value)) if value > 0 else None
    if exponent is None or not math.isclose(value, 10.0 ** exponent):
        return f"{value:g}"
    return "10" + str(exponent).translate(_SUPERSCRIPT)

"""Bar charts as SVG drawn on the server (no JavaScript, no build step): the analytics page draws
MTTA, MTTR and SLA compliance per SEV from the figures ``sevflow report`` computes
(analytics/figures.py). Pure: values in, markup out; every label is escaped."""

from collections.abc import Sequence
from dataclasses import dataclass
from html import escape

__all__ = ["Bar", "bar_chart"]

_ROW = 28
_LABEL = 64
_WIDTH = 360
_VALUE = 96


@dataclass(frozen=True)
class Bar:
    """One bar: ``value`` None draws an empty row labelled ``text`` (e.g. "no data")."""

    label: str
    value: float | None
    text: str
    breached: bool = False


def bar_chart(title: str, bars: Sequence[Bar], *, maximum: float | None = None) -> str:
    """A horizontal bar chart; bars scale to ``maximum`` (default: the largest value)."""
    values = [b.value for b in bars if b.value is not None]
    top = maximum if maximum is not None else max(values, default=0.0)
    height = _ROW * len(bars) + 8
    width = _LABEL + _WIDTH + _VALUE
    parts = [
        f'<svg class="chart" role="img" viewBox="0 0 {width} {height}" '
        f'xmlns="http://www.w3.org/2000/svg"><title>{escape(title)}</title>'
    ]
    for index, bar in enumerate(bars):
        y = 4 + index * _ROW
        length = 0.0 if not bar.value or top <= 0 else _WIDTH * min(bar.value / top, 1.0)
        kind = "bar breached" if bar.breached else "bar"
        parts.append(
            f'<text x="0" y="{y + 18}" class="label">{escape(bar.label)}</text>'
            f'<rect x="{_LABEL}" y="{y + 4}" width="{length:.1f}" height="18" class="{kind}"/>'
            f'<text x="{_LABEL + length + 6:.1f}" y="{y + 18}" class="value">{escape(bar.text)}</text>'
        )
    parts.append("</svg>")
    return "".join(parts)

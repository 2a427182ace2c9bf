"""The page's charts: matplotlib figures rendered to inline SVG.

matplotlib's SVG backend writes a standalone vector image with no script and no external reference, so it
embeds in the page as it is and the page stays one offline file. ``svg.fonttype = "none"`` keeps every
label as ``<text>`` (not glyph outlines), so the browser draws Korean labels with the system's fonts (the
page's font stack) and the text stays selectable; ``svg.hashsalt`` and no ``Date`` metadata make the
same figures give the same bytes, so a page rebuilt from the same run is identical.

Figures are made with :class:`matplotlib.figure.Figure` (no pyplot: no global figure state, no GUI backend).
"""

from __future__ import annotations

import io
import re
import warnings
from typing import Sequence

FONT_STACK = ["Noto Sans CJK KR", "Noto Sans KR", "Apple SD Gothic Neo", "Malgun Gothic", "NanumGothic", "DejaVu Sans", "sans-serif"]
_CSS_FONTS = "system-ui, -apple-system, 'Apple SD Gothic Neo', 'Malgun Gothic', 'Noto Sans CJK KR', 'Noto Sans KR', NanumGothic, sans-serif"
_RC = {
    "svg.fonttype": "none",
    "svg.hashsalt": "kodolly-report",
    "font.family": "sans-serif",
    "font.sans-serif": FONT_STACK,
    "font.size": 9,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.titlesize": 10,
    "axes.titleweight": "bold",
}
COLORS = {"written": "#3b7dd8", "rejected": "#d9534f", "bar": "#3b7dd8", "hangul": "#2a9d8f", "dpo": "#8e5bd8"}
WIDTH = 6.4  # inches at 72 px each in the SVG: 460 px wide, scaled to the column by CSS


def _svg(fig) -> str:
    from matplotlib.backends.backend_svg import FigureCanvasSVG

    buf = io.StringIO()
    FigureCanvasSVG(fig)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "Glyph ... missing from font": the browser draws the text, not matplotlib
        fig.savefig(buf, format="svg", metadata={"Date": None, "Creator": None}, bbox_inches="tight")
    svg = buf.getvalue()
    svg = svg[svg.index("<svg"):]  # no XML declaration or DOCTYPE inside HTML
    svg = re.sub(r'<svg([^>]*?) width="([\d.]+)pt" height="([\d.]+)pt"', r'<svg\1 class="chart" width="\2" height="\3"', svg, count=1)
    # labels are drawn by the browser: name the page's font stack, not the one matplotlib measured with
    return re.sub(r"font-family:[^;\"]*", "font-family:" + _CSS_FONTS.replace("'", "&#39;"), svg)


def _figure(rows: int = 0, height: float | None = None):
    import matplotlib
    from matplotlib.figure import Figure

    with matplotlib.rc_context(_RC):
        fig = Figure(figsize=(WIDTH, height if height is not None else max(1.4, 0.28 * rows + 0.8)))
        ax = fig.add_subplot()
    return fig, ax


def _label(text: str, limit: int = 38) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def bars(labels: Sequence[str], values: Sequence[int], title: str, *, color: str = COLORS["bar"]) -> str:
    """Horizontal bars, the first label on top, each bar with its count."""
    import matplotlib

    with matplotlib.rc_context(_RC):
        fig, ax = _figure(len(labels))
        ys = list(range(len(labels)))[::-1]
        ax.barh(ys, values, color=color, height=0.7)
        ax.set_yticks(ys, [_label(str(lab)) for lab in labels])
        top = max(values) if values else 0
        for y, v in zip(ys, values):
            ax.text(v + top * 0.01, y, f"{v:,}", va="center", fontsize=8)
        ax.set_xlim(0, top * 1.15 or 1)
        ax.set_title(title, loc="left")
        ax.tick_params(axis="x", labelsize=8)
        return _svg(fig)


def stacked(labels: Sequence[str], parts: dict[str, Sequence[int]], title: str) -> str:
    """Horizontal stacked bars (e.g. written and rejected per source) with a legend."""
    import matplotlib

    with matplotlib.rc_context(_RC):
        fig, ax = _figure(len(labels) + 1)
        ys = list(range(len(labels)))[::-1]
        left = [0] * len(labels)
        for name, values in parts.items():
            ax.barh(ys, values, left=left, color=COLORS.get(name, COLORS["bar"]), height=0.7, label=name)
            left = [a + b for a, b in zip(left, values)]
        ax.set_yticks(ys, [_label(str(lab)) for lab in labels])
        ax.legend(loc="lower left", bbox_to_anchor=(0, 1.02), ncols=len(parts), fontsize=8, frameon=False, borderaxespad=0)
        ax.set_title(title, loc="left", pad=18)
        ax.tick_params(axis="x", labelsize=8)
        return _svg(fig)


def histogram(labels: Sequence[str], counts: Sequence[int], title: str, xlabel: str, *, color: str = COLORS["bar"]) -> str:
    """Vertical bars over named bins (length ranges, share ranges)."""
    import matplotlib

    with matplotlib.rc_context(_RC):
        fig, ax = _figure(height=2.3)
        xs = list(range(len(labels)))
        ax.bar(xs, counts, color=color, width=0.85)
        ax.set_xticks(xs, labels, rotation=45 if len(labels) > 8 else 0, ha="right" if len(labels) > 8 else "center", fontsize=7)
        ax.set_xlabel(xlabel, fontsize=8)
        ax.set_ylabel("rows", fontsize=8)
        ax.set_title(title, loc="left")
        ax.tick_params(axis="y", labelsize=8)
        return _svg(fig)


__all__ = ["bars", "histogram", "stacked"]

"""Figures for the evaluation report (matplotlib, Agg backend), each returned as a base64 PNG.

Every function takes plain data from an :class:`EvaluationReport` and returns the figure; nothing
here computes metrics. ``to_base64`` renders a figure for embedding in the single-file HTML report.
"""

from __future__ import annotations

import base64
import functools
import io
import math
from collections.abc import Callable
from typing import Any, TypeVar

import numpy as np

from transferops._extras import require

INK = "#1f2933"
MUTED = "#7b8794"
GRID = "#e4e7eb"
BLUE = "#2563eb"
ORANGE = "#ea580c"
GREEN = "#16a34a"
RED = "#dc2626"
GREY = "#cbd2d9"
F = TypeVar("F", bound=Callable[..., Any])


STYLE = {
    "font.size": 9, "axes.edgecolor": GRID, "axes.labelcolor": INK, "xtick.color": MUTED,
    "ytick.color": MUTED, "axes.titleweight": "bold", "axes.titlesize": 10, "axes.titlecolor": INK,
    "axes.spines.top": False, "axes.spines.right": False, "axes.grid": True, "grid.color": GRID,
    "grid.linewidth": 0.8, "legend.frameon": False, "figure.facecolor": "white",
    "font.family": ["DejaVu Sans"],
}


def _styled(fn: F) -> F:
    """Run a figure builder under our style without touching the user's global rcParams."""

    @functools.wraps(fn)
    def wrapper(*a: Any, **kw: Any) -> Any:
        mpl = require("matplotlib", "plot")
        with mpl.rc_context(STYLE):
            return fn(*a, **kw)

    return wrapper  # type: ignore[return-value]


def _figure(**kw: Any) -> Any:
    # A bare Figure (no pyplot): no global figure registry, no backend switch in the user's session.
    from matplotlib.figure import Figure

    return Figure(**kw)


#: Figures are rendered at 1.5× their display size so they stay sharp on high-density screens.
DPI = 144
DISPLAY_SCALE = 1.35


def to_png(fig: Any, dpi: int = DPI) -> bytes:
    buf = io.BytesIO()
    with require("matplotlib", "plot").rc_context(STYLE):
        fig.savefig(buf, format="png", dpi=dpi, bbox_inches="tight")
    return buf.getvalue()


def to_base64(fig: Any, dpi: int = DPI) -> tuple[str, int]:
    """(base64 PNG, display width in CSS pixels) of ``fig``."""
    png = to_png(fig, dpi)
    width = int.from_bytes(png[16:20], "big")  # PNG IHDR: width is bytes 16-19
    return base64.b64encode(png).decode("ascii"), int(width / DISPLAY_SCALE)


@_styled
def confusion_figure(matrix: list[list[int]], labels: list[str], *, multilabel: bool = False) -> Any:
    """Row-normalised heatmap with counts (multi-label: per label tn/fp/fn/tp shares)."""
    m = np.asarray(matrix, dtype=float)
    cols = ["TN", "FP", "FN", "TP"] if multilabel else labels
    rows_sum = m.sum(axis=1, keepdims=True)
    share = np.divide(m, rows_sum, out=np.zeros_like(m), where=rows_sum > 0)
    size = max(3.6, 0.55 * len(cols) + 2.2)
    fig = _figure(figsize=(size + 0.8, max(3.0, 0.5 * len(labels) + 1.6)))
    ax = fig.subplots()
    ax.grid(False)
    im = ax.imshow(share, cmap="Blues", vmin=0, vmax=1, aspect="auto")
    ax.set_xticks(range(len(cols)), [_short(c) for c in cols], rotation=30 if len(cols) > 4 else 0, ha="right"
                  if len(cols) > 4 else "center")
    ax.set_yticks(range(len(labels)), [_short(c) for c in labels])
    ax.set_xlabel("outcome" if multilabel else "predicted")
    ax.set_ylabel("label" if multilabel else "true")
    for i in range(m.shape[0]):
        for j in range(m.shape[1]):
            ax.text(j, i, f"{int(m[i, j])}", ha="center", va="center", fontsize=8,
                    color="white" if share[i, j] > 0.55 else INK)
    cb = fig.colorbar(im, ax=ax, fraction=0.046, pad=0.03)
    cb.set_label("share of row", color=MUTED)
    cb.outline.set_visible(False)
    ax.set_title("Confusion (row-normalised, counts shown)")
    return fig


@_styled
def slices_figure(slices: list[dict[str, Any]], metric: str, gate_lines: dict[str, float] | None = None
                  ) -> Any:
    """Horizontal bars of ``metric`` per slice, grouped by column, worst first; dashed gate lines."""
    gate_lines = gate_lines or {}
    rows = [s for s in slices]
    n = len(rows)
    fig = _figure(figsize=(7.2, max(1.7, 0.3 * n + 1.1)))
    ax = fig.subplots()
    ax.set_ylim(-0.7, n - 0.3)
    ys = np.arange(n)[::-1]
    vals: list[float] = [0.0 if s.get(metric) is None or _nan(s.get(metric)) else float(s[metric])
                         for s in rows]
    colors = []
    for s, v in zip(rows, vals, strict=True):
        line = gate_lines.get(s["column"])
        if s.get("low_support"):
            colors.append(GREY)
        elif line is not None and v < line:
            colors.append(RED)
        else:
            colors.append(BLUE)
    ax.barh(ys, vals, color=colors, height=0.68)
    ax.set_yticks(ys, [f"{_short(s['column'], 14)} = {_short(str(s['value']), 22)}" for s in rows])
    ax.set_xlim(0, 1.12)
    ax.set_xlabel(metric)
    for y, v, s in zip(ys, vals, rows, strict=True):
        ax.text(v + 0.01, y, f"{v:.2f}  n={s['support']}", va="center", fontsize=7.5, color=MUTED)
    # Thin separators between columns, so each column's slices read as one group.
    for i in range(1, n):
        if rows[i]["column"] != rows[i - 1]["column"]:
            ax.axhline(ys[i] + 0.5, color=MUTED, linewidth=0.6, alpha=0.6)
    # Gate lines: one per gated column, drawn across that column's bars only.
    for col, thr in gate_lines.items():
        idx = [i for i, s in enumerate(rows) if s["column"] == col]
        if not idx:
            continue
        top, bottom = ys[min(idx)] + 0.45, ys[max(idx)] - 0.45
        ax.plot([thr, thr], [bottom, top], color=ORANGE, linestyle="--", linewidth=1.6)
    ax.grid(axis="y", visible=False)
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    handles: list[Any] = [Patch(color=BLUE, label="meets gate / no gate"),
                          Patch(color=RED, label="below gate"),
                          Patch(color=GREY, label="low support (not gated)")]
    if gate_lines:
        what = ", ".join(f"{c} ≥ {t:g}" for c, t in gate_lines.items())
        handles.append(Line2D([0], [0], color=ORANGE, linestyle="--", label=f"gate: {what}"))
    ax.legend(handles=handles, loc="upper center", bbox_to_anchor=(0.5, -0.12 - 1.2 / max(n + 3, 1)), ncol=4,
              fontsize=7.5)
    ax.set_title(f"Slices by {metric} (worst first within each column)")
    return fig


@_styled
def reliability_figure(before: dict[str, list[float]], after: dict[str, list[float]] | None,
                       ece_before: float, ece_after: float | None, temperature: float | None) -> Any:
    """Reliability diagram: accuracy vs. confidence per bin, before and after temperature scaling."""
    fig = _figure(figsize=(7.6, 3.5))
    axes = fig.subplots(1, 2, gridspec_kw={"width_ratios": [3, 2]})
    ax, axh = axes
    ax.plot([0, 1], [0, 1], color=GREY, linestyle="--", linewidth=1, label="perfect calibration")
    for data, color, lab in ((before, ORANGE, f"T = 1 (ECE {ece_before:.3f})"),
                             (after, BLUE, f"T = {temperature:.2f} (ECE {ece_after:.3f})"
                              if after and ece_after is not None and temperature else "")):
        if not data:
            continue
        conf, acc = np.asarray(data["confidence"], float), np.asarray(data["accuracy"], float)
        ok = ~np.isnan(conf)
        count = np.asarray(data["count"], float)[ok]
        ax.plot(conf[ok], acc[ok], color=color, linewidth=1.4, alpha=0.75, label=lab)
        # Marker area ∝ rows in the bin: a one-row bin should not look as trustworthy as a full one.
        ax.scatter(conf[ok], acc[ok], s=8 + 90 * count / max(count.max(), 1), color=color, zorder=3,
                   edgecolors="white", linewidths=0.6)
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.02)
    ax.set_xlabel("mean confidence in bin")
    ax.set_ylabel("observed accuracy")
    ax.set_title("Reliability diagram (marker size = rows in bin)")
    ax.legend(loc="upper left", fontsize=7.5)
    edges = np.asarray(before["edges"])
    width = edges[1] - edges[0]
    axh.bar(edges[:-1], before["count"], width=width, align="edge", color=ORANGE, alpha=0.45, label="T = 1")
    if after:
        axh.stairs(after["count"], edges, color=BLUE, linewidth=1.6, label="scaled")
    axh.set_xlim(0, 1)
    axh.set_xlabel("confidence")
    axh.set_ylabel("rows")
    axh.set_title("Confidence histogram")
    axh.legend(fontsize=7.5)
    fig.tight_layout()
    return fig


@_styled
def threshold_figure(section: dict[str, Any]) -> Any:
    """Precision and recall (or accuracy and coverage) against the decision threshold."""
    c = section["curve"]
    names = section.get("series") or {"precision": "precision", "recall": "recall"}
    fig = _figure(figsize=(7.2, 3.3))
    ax = fig.subplots()
    th = np.asarray(c["threshold"], float)
    ax.plot(th, c["precision"], color=BLUE, linewidth=1.8, label=names["precision"])
    ax.plot(th, c["recall"], color=ORANGE, linewidth=1.8, label=names["recall"])
    if "f1" in c:
        ax.plot(th, c["f1"], color=GREEN, linewidth=1.2, linestyle=":", label="F1")
    # A model whose scores all sit in a narrow band (e.g. after a large temperature) gets a zoomed axis.
    lo, hi = (float(th.min()), float(th.max())) if len(th) else (0.0, 1.0)
    zoom = hi - lo < 0.25
    cur = section.get("current")
    if cur:
        ax.axvline(cur["threshold"], color=INK, linestyle="--", linewidth=1)
        ax.text(cur["threshold"], 1.03, f"  current {cur['threshold']:.3f}", fontsize=8, color=INK,
                va="bottom")
    if zoom:
        pad = max(1e-4, (hi - lo) * 0.25)
        ax.set_xlim(max(0.0, lo - pad), min(1.0, hi + pad))
    else:
        ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.08)
    ax.set_xlabel(section.get("x_label", "threshold") + (" (zoomed to the score range)" if zoom else ""))
    ax.set_title("Threshold curve")
    ax.legend(loc="lower left", fontsize=8)
    return fig


def _short(s: str, n: int = 18) -> str:
    return s if len(s) <= n else s[: n - 1] + "…"


def _nan(v: Any) -> bool:
    return isinstance(v, float) and math.isnan(v)

"""Bar plot of a :class:`~transferops.select.selection.SelectionResult` (separate from the computation)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from transferops._extras import require
from transferops.select.selection import SelectionResult


def plot_selection(result: SelectionResult, path: str | Path) -> Path:
    """Grouped bars of kNN / probe accuracy / probe macro-F1 per candidate and baseline, and LogME beside.

    >>> plot_selection(select("news.csv", ["minilm-l6"]), "select.png")    # doctest: +SKIP
    """
    mpl = require("matplotlib", "plot")
    mpl.use("Agg")  # files only; never needs a display
    import matplotlib.pyplot as plt

    rows = result.rows
    names = [r.name.replace("baseline:", "baseline\n") for r in rows]
    x = np.arange(len(rows))
    fig, (ax, ax2) = plt.subplots(1, 2, figsize=(4 + 1.6 * len(rows), 4.2),
                                  gridspec_kw={"width_ratios": [3, 2]})
    series = [("knn_accuracy", "kNN-LOO acc"), ("probe_accuracy", "probe acc"),
              ("probe_macro_f1", "probe F1")]
    w = 0.8 / len(series)
    for i, (key, label) in enumerate(series):
        vals = [r.score(key) for r in rows]
        ax.bar(x + (i - 1) * w, [np.nan if v is None else v for v in vals], w, label=label)
    ax.set_xticks(x, names, fontsize=8)
    ax.set_ylim(0, 1.25)  # headroom for the legend above the bars
    ax.set_ylabel("score on the selection split")
    ax.set_title(f"{result.n} examples · ranked by {result.rank_by}")
    ax.legend(fontsize=8, loc="upper center", ncol=3)
    lm = [r.logme for r in rows]
    colors = ["tab:gray" if r.kind == "baseline" else "tab:purple" for r in rows]
    ax2.bar(x, [np.nan if v is None else v for v in lm], 0.6, color=colors)
    ax2.axhline(0, color="black", linewidth=0.6)
    ax2.set_xticks(x, names, fontsize=8)
    ax2.set_title("LogME evidence (higher is better)")
    fig.tight_layout()
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out

"""Power-curve plot (separate from the computation in :mod:`~transferops.abtest.sample_size`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from transferops._extras import require


def plot_power_curve(curve: pd.DataFrame, path: str | Path, *, baseline_rate: float, alpha: float = 0.05,
                     power: float = 0.8, relative: bool = False, mark: float | None = None) -> Path:
    """Users per arm (log scale) against the detectable effect; ``mark`` highlights the planned effect.

    ``curve`` is the frame :func:`~transferops.abtest.sample_size.power_curve` returns.
    """
    require("matplotlib", "plot")
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.5, 4.2))
    x = curve["mde"] * (100 if relative else 1)
    ax.plot(x, curve["n_pooled"], label="pooled (source-text formula)", lw=2)
    ax.plot(x, curve["n_unpooled"], label="unpooled", lw=1, ls="--")
    if mark is not None:
        row: Any = curve.iloc[(curve["mde"] - mark).abs().argsort()[:1]]
        n_plan = row[["n_pooled", "n_unpooled"]].max(axis=1)  # the plan takes the larger formula
        ax.scatter(row["mde"] * (100 if relative else 1), n_plan, color="crimson", zorder=3,
                   label=f"planned: {int(n_plan.iloc[0]):,} per arm")
    ax.set_yscale("log")
    ax.set_xlabel("detectable lift (% of baseline)" if relative else "detectable difference in rate")
    ax.set_ylabel("users per arm")
    ax.set_title(f"Sample size at baseline {baseline_rate:g}, alpha {alpha:g}, power {power:g}")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend()
    fig.tight_layout()
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out

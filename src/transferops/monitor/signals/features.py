"""``feature_psi:<name>``: PSI of each input feature (characters, tokens, [UNK] rate)."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from transferops.monitor.signals.base import Signal, SignalContext, register_signal


@register_signal("feature_psi", order=30)
def feature_psi(ctx: SignalContext) -> Iterator[Signal]:
    if not ctx.window.n:
        return
    for fname, fb in ctx.window.features.items():
        fh = ctx.profile.features[fname]
        if not fb.ok.any():
            continue
        counts = np.bincount(fb.bins[fb.ok], minlength=len(fh.edges) + 1)
        mean = float(fb.values[fb.ok].mean()) if fb.values is not None else None  # None: binned in SQL
        yield ctx.psi_signal(f"feature_psi:{fname}", np.asarray(fh.counts), counts,
                             {"mean": mean, "reference_mean": fh.mean})

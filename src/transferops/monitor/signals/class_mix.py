"""``class_psi``: PSI of the predicted-class mix against the reference (KL reported alongside)."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from transferops.monitor.signals.base import Signal, SignalContext, kl, register_signal


@register_signal("class_psi", order=10)
def class_psi(ctx: SignalContext) -> Iterator[Signal]:
    if not ctx.window.n:
        return
    live = ctx.live_class_counts
    ref = np.r_[ctx.reference_class_counts, 0.0]  # the reference never saw "<other>"
    yield ctx.psi_signal("class_psi", ref, live, {"kl": kl(live, ref)})

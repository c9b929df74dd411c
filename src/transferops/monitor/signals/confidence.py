"""``confidence_psi``: PSI of the confidence distribution (high-confidence share reported).

Confidence is :meth:`transferops.decision.DecisionRule.confidence` on both sides: the reference
profile and the server compute it with the same rule.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from transferops.monitor.signals.base import Signal, SignalContext, register_signal


@register_signal("confidence_psi", order=20)
def confidence_psi(ctx: SignalContext) -> Iterator[Signal]:
    w, ch = ctx.window, ctx.profile.confidence
    if not w.n:
        return
    live = np.bincount(w.conf_bin[w.conf_ok], minlength=len(ch.edges) + 1)
    yield ctx.psi_signal("confidence_psi", np.asarray(ch.counts), live,
                         {"high_share": ctx.high_confidence_share, "reference_high_share": ch.high_share})

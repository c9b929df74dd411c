"""``accuracy_drop``: reference accuracy minus accuracy on the predictions that got feedback."""

from __future__ import annotations

from collections.abc import Iterator

from transferops.monitor.signals.base import Signal, SignalContext, grade, register_signal


@register_signal("accuracy_drop", order=50)
def accuracy_drop(ctx: SignalContext) -> Iterator[Signal]:
    cfg = ctx.config
    acc, _ = ctx.feedback_accuracy
    ref_acc = ctx.profile.accuracy
    n_fb = 0 if ctx.feedback is None else len(ctx.feedback)
    need = cfg.min_feedback if ctx.min_feedback is None else ctx.min_feedback
    if acc is None or ref_acc is None or n_fb < need:
        return
    drop = float(ref_acc) - acc
    yield Signal("accuracy_drop", drop, grade(drop, cfg.accuracy_warn, cfg.accuracy_retrain),
                 cfg.accuracy_warn, cfg.accuracy_retrain,
                 {"accuracy": acc, "reference_accuracy": ref_acc, "n_feedback": n_fb})

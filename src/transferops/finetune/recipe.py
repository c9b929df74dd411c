"""``auto`` means the whole recipe: what ``advise`` recommends for this data, applied by ``train``.

The rules live in :mod:`transferops.select.advise` (one copy); this module only maps its
:class:`~transferops.select.advise.Recommendation` onto a :class:`TrainConfig`, field by field, and
never touches a field the user set explicitly (a CLI flag, a YAML key, a keyword argument).
Each choice is recorded with its reason, and lands in the manifest under ``recipe``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Collection
from dataclasses import dataclass
from typing import Any

from transferops.finetune.config import TrainConfig

#: ``auto`` never raises ``max_length`` above this (cost grows with length on CPU); pass
#: ``--max-length`` to go higher — the advise table still shows the full recommendation.
AUTO_MAX_LENGTH_CAP = 256


@dataclass
class RecipeChoice:
    """One field of the recipe: the value used, where it came from and why."""

    field: str
    value: Any
    source: str  # "advise" | "user" | "default"
    reason: str

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def explicit_fields(config: TrainConfig | None, overrides: Collection[str]) -> set[str]:
    """Fields the user set: keyword overrides plus config fields that differ from the defaults.

    A config built with a value equal to the default cannot be told apart from the default; the
    CLI passes the exact set of flags and YAML keys instead (``train(..., explicit=...)``).
    """
    out = set(overrides)
    if config is not None:
        default = TrainConfig()
        for f in dataclasses.fields(TrainConfig):
            if getattr(config, f.name) != getattr(default, f.name):
                out.add(f.name)
    return out


def apply_recipe(cfg: TrainConfig, advice: Any, explicit: Collection[str]) -> tuple[TrainConfig,
                                                                                      list[RecipeChoice]]:
    """Apply ``advice.recommendation`` to the fields of ``cfg`` the user did not set."""
    rec = advice.recommendation
    fired = {f.rule: f for f in advice.findings}
    changes: dict[str, Any] = {}
    choices: list[RecipeChoice] = []

    def why(*rules: str, fallback: str) -> str:
        hit = [f"{fired[r].observed} → {fired[r].advice}" for r in rules if r in fired]
        return "; ".join(hit) if hit else fallback

    # Imbalance: focal loss (long tail) or class weighting — one decision, both fields.
    if "loss" in explicit or "class_weight" in explicit:
        for f in ("loss", "class_weight"):
            choices.append(RecipeChoice(f, getattr(cfg, f), "user" if f in explicit else "default",
                                        "set by the user" if f in explicit else
                                        "left as is: the user chose the loss/class weighting"))
    else:
        changes["loss"], changes["class_weight"] = rec.loss, rec.class_weight
        choices.append(RecipeChoice("loss", rec.loss, "advise",
                                    why("long-tail", fallback="no long tail: plain cross-entropy")))
        choices.append(RecipeChoice("class_weight", rec.class_weight, "advise",
                                    why("imbalance", fallback="classes balanced (max/min ≤ 3x): no weights")))
    if "max_length" in explicit:
        choices.append(RecipeChoice("max_length", cfg.max_length, "user", "set by the user"))
    else:
        ml = int(min(rec.max_length, AUTO_MAX_LENGTH_CAP))
        note = (f" (advise said {rec.max_length}; auto caps at {AUTO_MAX_LENGTH_CAP} for cost, pass "
                "--max-length to go higher)" if rec.max_length > AUTO_MAX_LENGTH_CAP else "")
        changes["max_length"] = ml
        choices.append(RecipeChoice("max_length", ml, "advise",
                                    why("truncation", "longer-than-checkpoint",
                                        fallback="covers the 95th percentile of token lengths") + note))
    if "dedupe" in explicit:
        choices.append(RecipeChoice("dedupe", cfg.dedupe, "user", "set by the user"))
    elif rec.dedupe:
        changes["dedupe"] = True
        choices.append(RecipeChoice("dedupe", True, "advise", why("duplicates", fallback="duplicates")))
    choices.append(RecipeChoice("split", rec.split, "advise", why("temporal", "group", "stratified",
                                                                  fallback=rec.split)))
    new = TrainConfig.from_dict({**cfg.to_dict(), **changes}) if changes else cfg
    return new, choices


def recommend_strategy(advice: Any, n_train: int, n_layers: int) -> tuple[str, dict[str, Any], str]:
    """Strategy for ``auto``: advise's few-shot rule (frozen encoder + head), else the size bands."""
    from transferops.finetune.strategies import choose_auto

    fired = {f.rule: f for f in advice.findings}
    if advice.recommendation.strategy == "head" and "few-per-class" in fired:
        f = fired["few-per-class"]
        return "head", {}, f"{f.observed} → {f.advice}"
    return choose_auto(n_train, n_layers)


__all__ = ["AUTO_MAX_LENGTH_CAP", "RecipeChoice", "apply_recipe", "explicit_fields", "recommend_strategy"]

"""Advise and select: should this task transfer, which checkpoint, and what baseline must it beat.

>>> from transferops.select import advise, select        # doctest: +SKIP
>>> print(advise("news.csv").table())                     # doctest: +SKIP
>>> print(select("news.csv", ["minilm-l6", "mpnet-base"]).table())   # doctest: +SKIP
"""

from transferops.select.advise import Advice, AdviseContext, DataProfile, Finding, Recommendation, advise
from transferops.select.scores import knn_loo_accuracy, logme, probe_cv_scores
from transferops.select.selection import (
    CandidateScore,
    FinetuneOutcome,
    SelectConfig,
    SelectionResult,
    finetune_top,
    rank_correlations,
    select,
)

__all__ = [
    "Advice",
    "AdviseContext",
    "CandidateScore",
    "DataProfile",
    "Finding",
    "FinetuneOutcome",
    "Recommendation",
    "SelectConfig",
    "SelectionResult",
    "advise",
    "finetune_top",
    "knn_loo_accuracy",
    "logme",
    "probe_cv_scores",
    "rank_correlations",
    "select",
]

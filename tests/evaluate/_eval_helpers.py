"""Helpers shared by the evaluation tests (a unique module name: tests folders are not packages)."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import numpy as np


def copy_artifact(src: Path, dst: Path) -> Path:
    """A writable copy (evaluate/calibrate write to the manifest; shared fixtures must stay pristine)."""
    shutil.copytree(src, dst)
    return dst


class TfidfModel:
    """Any object with ``predict_proba``, ``labels``, ``task`` and ``manifest`` can be evaluated."""

    def __init__(self, texts: list[str], y: list[str], *, manifest: dict[str, Any] | None = None) -> None:
        from sklearn.feature_extraction.text import TfidfVectorizer
        from sklearn.linear_model import LogisticRegression
        from sklearn.pipeline import make_pipeline

        self.labels = sorted(set(y))
        self.task = "binary" if len(self.labels) == 2 else "multiclass"
        self.manifest = {"name": "tfidf-wrapper", **(manifest or {})}
        self._pipe = make_pipeline(TfidfVectorizer(), LogisticRegression(C=10.0, max_iter=1000))
        self._pipe.fit(texts, [self.labels.index(v) for v in y])

    def predict_proba(self, texts: list[str]) -> np.ndarray:
        return np.asarray(self._pipe.predict_proba(texts))

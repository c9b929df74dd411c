"""The TF-IDF baseline in every training run (finetune/api.py): recorded, compared, warned about."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

import transferops


def _toy() -> pd.DataFrame:
    # Sentiment words decide the label: TF-IDF gets it perfectly.
    words = {"pos": ["good", "great", "excellent", "wonderful"],
             "neg": ["bad", "awful", "terrible", "horrible"]}
    rows = [{"text": f"{w[i % 4]} {w[(i + 1) % 4]} item {i}", "label": lab}
            for i in range(60) for lab, w in words.items()]
    return pd.DataFrame(rows)


def test_negative_transfer_is_warned(tiny_bert: Path, tmp_path: Path) -> None:
    # A random 2-layer model trained for one epoch at a tiny lr cannot learn: it loses to TF-IDF.
    res = transferops.train(_toy(), out=tmp_path / "neg", checkpoint=str(tiny_bert), strategy="full",
                            epochs=1, lr=1e-5, max_length=16, check_near_duplicates=False)
    base = res.manifest["baseline"]["tfidf_logreg"]["metrics"]
    assert base["macro_f1"] == pytest.approx(1.0)
    assert res.test_metrics["macro_f1"] < base["macro_f1"]
    assert any(w.startswith("negative transfer") for w in res.warnings)
    assert res.manifest["warnings"] == res.warnings
    assert "majority" in res.manifest["baseline"]
    assert "gap -" in res.summary()


def test_small_gap_says_question_the_complexity(tiny_bert: Path, tmp_path: Path) -> None:
    # Long enough to solve the toy task: model and baseline both perfect, gap 0 < 5 points.
    res = transferops.train(_toy(), out=tmp_path / "tie", checkpoint=str(tiny_bert), strategy="full",
                            epochs=12, lr=2e-3, early_stopping_patience=None, max_length=16,
                            check_near_duplicates=False)
    assert res.test_metrics["macro_f1"] == pytest.approx(1.0)
    assert not any(w.startswith("negative transfer") for w in res.warnings)
    assert any("question the added complexity" in w for w in res.warnings)


def test_no_baseline_no_gap_warning(tiny_bert: Path, tmp_path: Path) -> None:
    res = transferops.train(_toy(), out=tmp_path / "nob", checkpoint=str(tiny_bert), strategy="full",
                            epochs=1, lr=1e-5, max_length=16, check_near_duplicates=False, baseline=False)
    assert res.manifest["baseline"] == {}
    assert not any("TF-IDF" in w for w in res.warnings)

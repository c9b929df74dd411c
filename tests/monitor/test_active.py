"""Label queue (uncertainty sampling) and label import."""

from __future__ import annotations

import uuid

import numpy as np
import pandas as pd
import pytest
from monitor_synth import LABELS

from transferops.cli.main import main
from transferops.errors import DataError
from transferops.monitor.active import import_labels, label_queue, uncertainty


def _rec(text: str, probs: list[float], ts: float) -> dict:
    p = dict(zip(LABELS, probs, strict=True))
    top = max(p, key=p.get)
    return {"id": uuid.uuid4().hex, "ts": ts, "label": top, "probabilities": p, "confidence": p[top],
            "text": text, "route": "auto"}


def _stream(n: int = 60, seed: int = 0) -> list[dict]:
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        p = rng.dirichlet(np.full(5, 0.5 + 3 * rng.random()))
        out.append(_rec(f"article number {i}", p.tolist(), 1000.0 + i))
    return out


def _entropy(p: dict) -> float:
    v = np.clip(np.asarray(list(p.values())), 1e-12, 1)
    return float(-(v * np.log(v)).sum())


def test_uncertainty_strategies_rank_as_defined():
    proba = np.array([[0.9, 0.05, 0.05], [0.4, 0.35, 0.25], [0.5, 0.5, 0.0]])
    ent = uncertainty(proba, "entropy")
    assert ent.argmax() == 1
    margin = uncertainty(proba, "margin")
    assert margin.argmax() == 2  # p1 - p2 == 0
    lc = uncertainty(proba, "least-confidence")
    assert lc.argmax() == 1 and lc[0] == pytest.approx(0.1)


def test_queue_picks_highest_entropy_excluding_labeled_and_duplicates(store):
    recs = _stream()
    recs.append(_rec(recs[0]["text"].upper() + "  ", [0.2] * 5, 2000.0))  # near-copy of an item, max entropy
    recs.append(_rec("labelled already", [0.2] * 5, 2001.0))
    store.insert_predictions(recs)
    store.add_feedback(recs[-1]["id"], "tech")
    q = label_queue(store, k=10, strategy="entropy")
    assert list(q.columns) == ["prediction_id", "text", "predicted", "confidence", "uncertainty", "label"]
    pool = [r for r in recs[:-1]]
    expected_top = sorted(pool, key=lambda r: -_entropy(r["probabilities"]))
    assert q["prediction_id"].iloc[0] == expected_top[0]["id"]  # the uniform one
    assert recs[-1]["id"] not in set(q["prediction_id"])  # has feedback
    norm = q["text"].str.lower().str.strip()
    assert norm.is_unique  # the near-copy of article 0 appears at most once
    # exactly the 10 highest-entropy distinct texts
    seen, top10 = set(), []
    for r in expected_top:
        key = " ".join(r["text"].lower().split())
        if key not in seen:
            seen.add(key)
            top10.append(r["id"])
    assert list(q["prediction_id"]) == top10[:10]
    assert q["uncertainty"].is_monotonic_decreasing


def test_diverse_queue_spreads_over_predicted_classes(sqlite_store):
    recs = []
    for i in range(30):  # sport is by far the most uncertain class
        recs.append(_rec(f"sport item {i}", [0.19, 0.19, 0.2, 0.23, 0.19], float(i)))
    for i, lab in enumerate(["business", "tech", "politics"]):
        p = [0.02] * 5
        p[LABELS.index(lab)] = 0.92
        recs.append(_rec(f"{lab} item", p, 100.0 + i))
    sqlite_store.insert_predictions(recs)
    plain = label_queue(sqlite_store, k=4)
    assert set(plain["predicted"]) == {"sport"}
    diverse = label_queue(sqlite_store, k=4, diverse=True)
    assert set(diverse["predicted"]) == {"sport", "business", "tech", "politics"}


def test_cli_queue_then_import_roundtrip(sqlite_store, tmp_path, capsys):
    recs = _stream(40)
    sqlite_store.insert_predictions(recs)
    db = sqlite_store.url
    out = tmp_path / "queue.csv"
    assert main(["label-queue", "--db", db, "--k", "15", "--strategy", "margin", "--out", str(out)]) == 0
    q = pd.read_csv(out, dtype={"label": "object"})
    assert len(q) == 15 and q["label"].isna().all()
    q.loc[:9, "label"] = "sport"  # annotators did 10 of 15
    q.to_csv(out, index=False)
    labeled = tmp_path / "labeled.csv"
    train = tmp_path / "train.csv"
    pd.DataFrame({"text": ["old row"], "label": ["tech"]}).to_csv(train, index=False)
    assert main(["label-import", str(out), "--out", str(labeled), "--db", db, "--append-to", str(train)]) == 0
    back = pd.read_csv(labeled)
    assert len(back) == 10 and set(back["label"]) == {"sport"} and back["ts"].notna().all()
    assert len(pd.read_csv(train)) == 11
    assert len(sqlite_store.read_feedback_joined()) == 10
    # Already-labelled items leave the queue.
    assert main(["label-queue", "--db", db, "--k", "100", "--out", str(out)]) == 0
    assert len(pd.read_csv(out)) == 30


def test_import_rejects_unknown_labels(tmp_path):
    f = tmp_path / "q.csv"
    pd.DataFrame({"text": ["a", "b"], "label": ["sport", "weather"]}).to_csv(f, index=False)
    with pytest.raises(DataError, match="weather"):
        import_labels(f, known_labels=LABELS)
    g = tmp_path / "bad.csv"
    pd.DataFrame({"body": ["a"]}).to_csv(g, index=False)
    with pytest.raises(DataError, match="'text' is missing"):
        import_labels(g)

"""Active learning: pick the most uncertain logged, unlabeled predictions for annotators.

Strategies score each prediction's probability vector (higher = more uncertain):
``entropy`` (−Σ p log p), ``margin`` (1 − (p₁ − p₂)), ``least-confidence`` (1 − p₁).
Texts are deduplicated on their normalised form (the most uncertain copy is kept); ``diverse``
spreads the picks round-robin across predicted classes so one confusing class cannot fill the
whole queue.

>>> queue = label_queue(Store("runs/monitor.db"), k=200, strategy="entropy")      # doctest: +SKIP
>>> queue.to_csv("to_label.csv", index=False)                                     # doctest: +SKIP
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
import sqlalchemy as sa

from transferops.data import normalise_text
from transferops.errors import ConfigError, DataError
from transferops.monitor.store import Store

QueueStrategy = Literal["entropy", "margin", "least-confidence"]
STRATEGIES: tuple[str, ...] = ("entropy", "margin", "least-confidence")
QUEUE_COLUMNS = ("prediction_id", "text", "predicted", "confidence", "uncertainty", "label")


def uncertainty(proba: np.ndarray, strategy: QueueStrategy = "entropy") -> np.ndarray:
    """Uncertainty per row of a probability matrix (higher = less sure)."""
    if strategy not in STRATEGIES:
        raise ConfigError(f"strategy: {strategy!r} is not one of {', '.join(STRATEGIES)}")
    p = np.clip(np.asarray(proba, dtype=np.float64), 1e-12, 1.0)
    if strategy == "entropy":
        return -np.sum(p * np.log(p), axis=1)
    s = -np.sort(-p, axis=1)
    if strategy == "margin":
        second = s[:, 1] if s.shape[1] > 1 else 0.0
        return 1.0 - (s[:, 0] - second)
    return 1.0 - s[:, 0]


def label_queue(store: Store, *, k: int = 200, strategy: QueueStrategy = "entropy", diverse: bool = False,
                since: float | None = None, until: float | None = None, model: str | None = None) -> pd.DataFrame:
    """The ``k`` most uncertain unlabeled predictions as a DataFrame with columns :data:`QUEUE_COLUMNS`."""
    if k < 1:
        raise ConfigError(f"k: must be >= 1, got {k}")
    if strategy not in STRATEGIES:
        raise ConfigError(f"strategy: {strategy!r} is not one of {', '.join(STRATEGIES)}")
    p = store.table("predictions")
    stmt = (sa.select(p.c.id, p.c.text, p.c.label, p.c.confidence, p.c.probabilities)
            .where(p.c.text.is_not(None)).where(store.unlabeled_ids_filter()))
    stmt = store.window_filter(stmt, since, until, model)
    with store.engine.connect() as conn:
        rows = conn.execute(stmt).fetchall()
    if not rows:
        return pd.DataFrame(columns=list(QUEUE_COLUMNS))
    df = pd.DataFrame(rows, columns=["prediction_id", "text", "predicted", "confidence", "probabilities"])
    probs = [json.loads(v) if isinstance(v, str) else (v or {}) for v in df["probabilities"]]
    classes = sorted({c for d in probs for c in d})
    mat = np.asarray([[float(d.get(c, 0.0)) for c in classes] for d in probs], dtype=np.float64)
    df["uncertainty"] = uncertainty(mat, strategy) if len(classes) else 0.0
    df = df.sort_values(["uncertainty", "prediction_id"], ascending=[False, True], kind="mergesort")
    df["_norm"] = [normalise_text(t) for t in df["text"]]
    df = df.drop_duplicates("_norm", keep="first")
    if diverse:
        df = _round_robin(df, k)
    else:
        df = df.head(k)
    out = df.drop(columns=["_norm", "probabilities"]).reset_index(drop=True)
    out["label"] = ""
    return out[list(QUEUE_COLUMNS)]


def _round_robin(df: pd.DataFrame, k: int) -> pd.DataFrame:
    """Take the most uncertain item of each predicted class in turn until ``k`` are picked."""
    groups = [g for _, g in df.groupby("predicted", sort=True)]
    picked: list[Any] = []
    i = 0
    while len(picked) < k and any(i < len(g) for g in groups):
        # Within a round, most uncertain first, so truncation keeps the most useful items.
        round_rows = sorted((g.iloc[i] for g in groups if i < len(g)), key=lambda r: -r["uncertainty"])
        picked.extend(r.name for r in round_rows[: k - len(picked)])
        i += 1
    return df.loc[picked]


def write_queue(queue: pd.DataFrame, path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    queue.to_csv(path, index=False)
    return path


def import_labels(path: str | Path, *, store: Store | None = None, known_labels: list[str] | None = None
                  ) -> pd.DataFrame:
    """Read an annotated queue back as training rows (``text``, ``label``, ``prediction_id``, ``ts``).

    Rows with an empty label are skipped (not yet annotated). With ``store`` the labels are also
    recorded as feedback, so accuracy monitoring sees them.
    """
    from transferops.data import read_table

    df = read_table(path)
    for col in ("text", "label"):
        if col not in df.columns:
            raise DataError(f"{path}: column '{col}' is missing (expected the columns of a label queue: "
                            f"{', '.join(QUEUE_COLUMNS)})")
    lab = df["label"].astype("string").str.strip()
    done = df[lab.notna() & (lab != "")].copy()
    done["label"] = lab[done.index].astype(str)
    if known_labels is not None:
        bad = sorted(set(done["label"]) - {str(x) for x in known_labels})
        if bad:
            raise DataError(f"{path}: column 'label' has values the model does not know: {bad[:5]}; "
                            f"known: {known_labels}")
    if store is not None and "prediction_id" in done.columns:
        ids = done["prediction_id"].astype(str).tolist()
        present = [i for i in ids if store.has_prediction(i)]
        store.add_feedback_many((i, lab_) for i, lab_ in zip(ids, done["label"], strict=True) if i in set(present))
        if store is not None:
            p = store.table("predictions")
            with store.engine.connect() as conn:
                ts = dict(conn.execute(sa.select(p.c.id, p.c.ts).where(p.c.id.in_(present))).all())
            done["ts"] = [ts.get(i) for i in ids]
    cols = [c for c in ("text", "label", "prediction_id", "ts") if c in done.columns]
    return done[cols].reset_index(drop=True)


__all__ = ["QUEUE_COLUMNS", "STRATEGIES", "import_labels", "label_queue", "uncertainty", "write_queue"]

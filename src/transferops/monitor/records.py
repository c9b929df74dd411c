"""The prediction record: one type shared by the server, the logger and the store.

:class:`PredictionRecord` is what one logged prediction holds; :func:`to_row` is the one conversion
into a database row (the store's only way in), and it accepts the record or the plain dict the
server sends today (unknown keys ignored). :func:`make_records` produces records exactly as the
server logs them, for batch jobs that score offline.

>>> recs = make_records(transferops.load("runs/news"), texts)      # doctest: +SKIP
>>> Store("runs/monitor.db").insert_predictions(recs)             # doctest: +SKIP
"""

from __future__ import annotations

import datetime as _dt
import json
import math
import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields
from typing import Any

import numpy as np

from transferops.errors import DataError


@dataclass
class PredictionRecord:
    """One logged prediction (field order = the ``predictions`` table's columns, then ``client_id``).

    ``label`` is a class name (multi-label: a list of names); ``confidence`` is
    :meth:`transferops.decision.DecisionRule.confidence`; ``sketch`` the 16-number embedding sketch;
    ``n_chars``/``n_tokens``/``unk_rate`` the input features of :mod:`transferops.deploy.features`.
    """

    id: str
    ts: float
    model: str | None = None
    model_version: str | None = None
    arm: str | None = None
    experiment: str | None = None
    ab_key: str | None = None
    route: str | None = None
    label: str | list[str] | None = None
    probabilities: dict[str, float] | None = None
    confidence: float | None = None
    latency_ms: float | None = None
    n_chars: int | None = None
    n_tokens: int | None = None
    unk_rate: float | None = None
    sketch: list[float] | None = None
    text: str | None = None
    #: the caller's own id for the text (answered back to it; not stored)
    client_id: str | None = None

    @classmethod
    def from_mapping(cls, rec: Mapping[str, Any]) -> PredictionRecord:
        """A record from a dict (the server's form); keys that are not fields are ignored."""
        if not rec.get("id"):
            raise DataError("prediction record: 'id' is required")
        return cls(**{k: rec[k] for k in _FIELDS if k in rec})

    def to_dict(self) -> dict[str, Any]:
        return dict(vars(self))

    def to_row(self) -> dict[str, Any]:
        return to_row(self)


#: What the logger and the store take: a typed record, or the plain dict the server builds.
RecordLike = PredictionRecord | Mapping[str, Any]

_FIELDS: tuple[str, ...] = tuple(f.name for f in fields(PredictionRecord))
#: Columns of a logged prediction, in the order the server produces them (the store's table).
PREDICTION_COLUMNS: tuple[str, ...] = tuple(f for f in _FIELDS if f != "client_id")
JSON_COLUMNS = ("probabilities", "sketch")
NUMERIC_COLUMNS = ("ts", "confidence", "latency_ms", "n_chars", "n_tokens", "unk_rate")


def to_epoch(ts: Any) -> float:
    """Float seconds from a float, a datetime or an ISO-8601 string (naive means UTC)."""
    if ts is None:
        return time.time()
    if isinstance(ts, (int, float, np.integer, np.floating)):
        return float(ts)
    if isinstance(ts, _dt.datetime):
        d = ts
    else:
        try:  # CSV readers hand numbers back as strings
            return float(str(ts))
        except ValueError:
            pass
        try:
            d = _dt.datetime.fromisoformat(str(ts).replace("Z", "+00:00"))
        except ValueError as exc:
            raise DataError(f"ts: {ts!r} is neither a number nor an ISO-8601 time") from exc
    if d.tzinfo is None:
        d = d.replace(tzinfo=_dt.UTC)
    return d.timestamp()


def to_row(rec: RecordLike) -> dict[str, Any]:
    """The database row of a record (a :class:`PredictionRecord` or the server's dict): JSON text
    for probabilities, sketch and multi-label labels, epoch seconds, non-finite numbers as NULL."""
    data: Mapping[str, Any] = rec if isinstance(rec, Mapping) else vars(rec)
    row = {c: data.get(c) for c in PREDICTION_COLUMNS}
    if not row["id"]:
        raise DataError("prediction record: 'id' is required")
    row["id"] = str(row["id"])
    row["ts"] = to_epoch(row["ts"])
    for c in JSON_COLUMNS:
        v = row[c]
        if v is not None and not isinstance(v, str):
            row[c] = json.dumps(np.asarray(v).round(6).tolist() if c == "sketch" else
                                {str(k): round(float(p), 6) for k, p in dict(v).items()})
    if isinstance(row["label"], (list, tuple)):
        row["label"] = json.dumps(list(row["label"]))
    for c in ("confidence", "latency_ms", "unk_rate"):
        v = row[c]
        if v is not None:
            f = float(v)
            row[c] = f if math.isfinite(f) else None
    for c in ("n_chars", "n_tokens"):
        v = row[c]
        if v is not None:
            row[c] = int(v)
    return row


def make_records(model: Any, texts: Sequence[str], *, ts: float | Sequence[float] | None = None,
                 model_name: str | None = None, model_version: str | None = None, route: str | None = None,
                 review_below: float | None = None, arm: str | None = None, experiment: str | None = None,
                 keep_text: bool = True, batch_size: int = 64) -> list[PredictionRecord]:
    """One record per text: label, probabilities, confidence, input features and embedding sketch.

    Labels and confidence come from the model's :class:`~transferops.decision.DecisionRule`, as on
    the server. ``review_below`` sets ``route`` to ``review`` under that confidence (``auto``
    otherwise), as the server's human-review routing does.
    """
    from transferops.deploy.features import sketch, text_features

    texts = list(texts)
    t0 = time.perf_counter()
    logits, emb = model.infer(texts, batch_size=batch_size)  # one pass: logits + embedding, as the server
    proba = np.asarray(model.proba_from_logits(logits))
    labels, confidence = model.decision_rule.apply(proba)  # the server's labels and confidence
    sk = sketch(np.asarray(emb))
    feats = text_features(model.tokenizer, texts)
    latency = (time.perf_counter() - t0) * 1000 / max(len(texts), 1)
    now = time.time()
    if ts is None:
        times = [now] * len(texts)
    elif isinstance(ts, (int, float)):
        times = [float(ts)] * len(texts)
    else:
        times = [float(t) for t in ts]
    names = [str(x) for x in model.labels]
    out = []
    for i, text in enumerate(texts):
        conf = float(confidence[i])
        r = route or ("review" if review_below is not None and conf < review_below else "auto")
        out.append(PredictionRecord(
            id=uuid.uuid4().hex, ts=float(times[i]), model=model_name or getattr(model, "name", None),
            model_version=model_version, arm=arm, experiment=experiment, ab_key=None, route=r,
            label=labels[i], probabilities=dict(zip(names, proba[i].round(6).tolist(), strict=True)),
            confidence=conf, latency_ms=latency, n_chars=int(feats["n_chars"][i]),
            n_tokens=int(feats["n_tokens"][i]), unk_rate=float(feats["unk_rate"][i]),
            sketch=sk[i].tolist(), text=text if keep_text else None,
        ))
    return out


__all__ = ["JSON_COLUMNS", "NUMERIC_COLUMNS", "PREDICTION_COLUMNS", "PredictionRecord", "RecordLike", "make_records",
           "to_epoch", "to_row"]

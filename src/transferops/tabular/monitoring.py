"""``monitor`` for a tabular model: a window of the prediction log against the training reference
(:mod:`transferops.modality.tabular.drift`); the window is read from the shared prediction log
(:func:`logged_rows`). Exit codes as for text: 0 ok (or too little data), 3 warn,
4 retrain."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from transferops.errors import ArtifactError
from transferops.modality.tabular.drift import compare

EXIT = {"ok": 0, "insufficient": 0, "warn": 3, "retrain": 4}
MIN_ROWS = 30


def monitor_tabular(model_dir: str | Path, *, db: str, model_name: str | None = None, last: int | None = None,
                    window: str | None = None, warn: float = 0.1, retrain: float = 0.25, rate_warn: float = 0.05,
                    rate_retrain: float = 0.10) -> dict[str, Any]:
    from transferops.modality.tabular.schema import load_encoder
    from transferops.monitor.store import parse_window
    from transferops.tabular.artifact import REFERENCE_FILE

    folder = Path(model_dir)
    ref_file = folder / REFERENCE_FILE
    if not ref_file.exists():
        raise ArtifactError(f"{folder}: {REFERENCE_FILE} is missing; retrain the model (it is written by train)")
    reference = json.loads(ref_file.read_text())
    schema = load_encoder(folder).schema
    rows = logged_rows(db, schema.names, model_name=model_name, default_name=folder.name, last=last,
                       since=time.time() - parse_window(window) if window else None)
    name = rows.attrs["model"]
    base = {"model": str(folder), "logged_as": name, "rows": len(rows)}
    if len(rows) < MIN_ROWS:
        return {**base, "status": "insufficient", "exit_code": 0,
                "message": f"{len(rows)} logged predictions for {name!r}; drift needs at least {MIN_ROWS}"}
    frame = rows[schema.names]
    rep = compare(reference, frame, schema, decided_labels=rows["label"].tolist(), warn=warn, retrain=retrain,
                  rate_warn=rate_warn, rate_retrain=rate_retrain)
    rep.update(base)
    rep["review_rate"] = round(float((rows["route"] == "review").mean()), 4)
    rep["exit_code"] = EXIT[rep["status"]]
    return rep


def logged_rows(db: str, features: list[str], *, model_name: str | None = None, default_name: str | None = None,
                last: int | None = None, since: float | None = None) -> Any:
    """The rows a tabular model was asked about, read back from the shared prediction log
    (:class:`~transferops.monitor.store.Store`, table ``predictions``: the logged ``text`` of a row is the
    row as JSON): a DataFrame of ``features`` plus ``label``, ``route``, ``ts``, ``arm``; ``attrs["model"]``
    is the logged model name used (``model_name``, else the only one logged, else ``default_name``)."""
    import pandas as pd

    from transferops.monitor.store import Store

    store = Store(db)
    try:
        if model_name is None:
            names = sorted({str(m) for m in store.read_predictions(columns=["model"])["model"]})
            model_name = names[0] if len(names) == 1 else default_name
        log = store.read_predictions(columns=["text", "label", "route", "ts", "arm"], model=model_name, last=last,
                                     since=since)
    finally:
        store.dispose()
    parsed = []
    for t in log["text"]:
        try:
            row = json.loads(t) if isinstance(t, str) else {}
        except ValueError:  # a text prediction logged under the same name: not a row
            row = {}
        parsed.append(row if isinstance(row, dict) else {})
    frame = pd.DataFrame(parsed, columns=features)
    for c in ("label", "route", "ts", "arm"):
        frame[c] = log[c].to_numpy() if len(log) else []
    frame.attrs["model"] = model_name
    return frame


def summary(rep: dict[str, Any]) -> str:
    if rep["status"] == "insufficient":
        return f"{rep['status']}: {rep['message']}"
    lines = [f"{rep['status'].upper()}: {rep['rows']} predictions of {rep['logged_as']!r} vs the training reference"]
    for f in rep["most_drifted"]:
        d = rep["features"][f]
        lines.append(f"  {f:<24} PSI {d['psi']:.3f}  KL {d['kl']:.3f}  {d['status']}")
    pr = rep["prediction_rate"]
    for lbl in pr["reference"]:
        lines.append(f"  rate of {lbl!r}: {pr['reference'][lbl]:.1%} -> {pr['current'][lbl]:.1%} "
                     f"({pr['change'][lbl]:+.1%}, {pr['status']})")
    return "\n".join(lines)


__all__ = ["EXIT", "logged_rows", "monitor_tabular", "summary"]

"""The prediction log of tabular models: one row per prediction in table ``tabular_predictions`` of the same
database the text server logs to (SQLite file or PostgreSQL URL, through SQLAlchemy). The request row is
stored as JSON so ``monitor`` can recompute per-feature drift."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Sequence
from typing import Any

from transferops._extras import require

TABLE = "tabular_predictions"


class TabularLog:
    """Append predictions; read a window back (newest ``last`` rows, or those after ``since``)."""

    def __init__(self, url: str) -> None:
        from transferops.monitor.store import normalise_url

        sa = require("sqlalchemy", "monitor")
        self.url = normalise_url(url)
        self.engine = sa.create_engine(self.url, future=True)
        md = sa.MetaData()
        self.table = sa.Table(
            TABLE, md,
            sa.Column("id", sa.String(36), primary_key=True), sa.Column("ts", sa.Float, index=True),
            sa.Column("model", sa.String(200), index=True), sa.Column("version", sa.String(64)),
            sa.Column("row", sa.Text), sa.Column("label", sa.String(200)), sa.Column("proba", sa.Text),
            sa.Column("confidence", sa.Float), sa.Column("route", sa.String(16)), sa.Column("latency_ms", sa.Float),
            sa.Column("row_id", sa.String(200), nullable=True))
        md.create_all(self.engine)

    def write(self, records: Sequence[dict[str, Any]]) -> None:
        if not records:
            return
        with self.engine.begin() as conn:
            conn.execute(self.table.insert(), [
                {"id": r.get("id") or str(uuid.uuid4()), "ts": r.get("ts", time.time()), "model": r["model"],
                 "version": r.get("version", ""), "row": json.dumps(r["row"], default=str), "label": str(r["label"]),
                 "proba": json.dumps(r["proba"]), "confidence": float(r["confidence"]), "route": r["route"],
                 "latency_ms": float(r.get("latency_ms", 0.0)), "row_id": r.get("row_id")} for r in records])

    def fetch(self, model: str | None = None, *, last: int | None = None, since: float | None = None
              ) -> list[dict[str, Any]]:
        sa = require("sqlalchemy", "monitor")
        q = sa.select(self.table).order_by(self.table.c.ts.desc())
        if model:
            q = q.where(self.table.c.model == model)
        if since is not None:
            q = q.where(self.table.c.ts >= since)
        if last:
            q = q.limit(int(last))
        with self.engine.connect() as conn:
            rows = [dict(r._mapping) for r in conn.execute(q)]
        for r in rows:
            r["row"], r["proba"] = json.loads(r["row"]), json.loads(r["proba"])
        return rows[::-1]

    def models(self) -> list[str]:
        sa = require("sqlalchemy", "monitor")
        with self.engine.connect() as conn:
            return sorted(str(m) for (m,) in conn.execute(sa.select(self.table.c.model).distinct()))

    def close(self) -> None:
        self.engine.dispose()


__all__ = ["TABLE", "TabularLog"]

"""Model registry in the monitoring store: versions with lineage, aliases, promote and rollback.

A version records the artifact path, its parent version, base checkpoint, data fingerprint and
test metrics (read from the artifact manifest). Aliases ``champion`` and ``challenger`` point at
versions; every alias move is appended to ``alias_history`` so ``rollback`` can restore the
previous champion. The server polls the ``champion`` alias to swap models without a restart.

>>> reg = Registry(Store("runs/monitor.db"))                          # doctest: +SKIP
>>> v = reg.register("runs/news"); reg.promote(v.version)             # doctest: +SKIP
>>> reg.resolve("champion").path                                      # doctest: +SKIP
"""

from __future__ import annotations

import builtins
import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from transferops.errors import ConfigError
from transferops.monitor.store import Store

CHAMPION = "champion"
CHALLENGER = "challenger"
ALIASES = (CHAMPION, CHALLENGER)


@dataclass
class ModelVersion:
    version: str
    name: str | None
    path: str
    parent: str | None
    base_checkpoint: str | None
    data_fingerprint: str | None
    metrics: dict[str, Any]
    note: str | None
    created: float
    aliases: list[str]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class Registry:
    """Versions and aliases on top of a :class:`Store`."""

    def __init__(self, store: Store | str | Path) -> None:
        self.store = store if isinstance(store, Store) else Store(store)

    # ------------------------------------------------------------------ versions
    def register(self, path: str | Path, *, parent: str | None = None, note: str | None = None,
                 metrics: dict[str, Any] | None = None) -> ModelVersion:
        """Add an artifact folder as a new version (``v1``, ``v2``...); lineage from its manifest."""
        from transferops.artifacts.model import read_manifest

        p = Path(path).resolve()
        m = read_manifest(p)
        if parent is not None:
            self.get(parent)
        vt = self.store.table("model_versions")
        with self.store.engine.begin() as conn:
            seq = int(conn.execute(sa.select(sa.func.coalesce(sa.func.max(vt.c.seq), 0))).scalar_one()) + 1
            row = {"version": f"v{seq}", "seq": seq, "name": m.get("name", p.name), "path": str(p),
                   "parent": parent, "base_checkpoint": (m.get("base") or {}).get("name"),
                   "data_fingerprint": (m.get("data") or {}).get("fingerprint"),
                   "metrics": json.dumps(metrics if metrics is not None else (m.get("metrics") or {})),
                   "note": note, "created": time.time()}
            conn.execute(vt.insert(), [row])
        return self.get(row["version"])

    def _aliases_of(self) -> dict[str, list[str]]:
        at = self.store.table("aliases")
        out: dict[str, list[str]] = {}
        with self.store.engine.connect() as conn:
            for alias, version in conn.execute(sa.select(at.c.alias, at.c.version)).all():
                out.setdefault(version, []).append(alias)
        return out

    def _to_version(self, r: Any, aliases: dict[str, list[str]]) -> ModelVersion:
        return ModelVersion(version=r.version, name=r.name, path=r.path, parent=r.parent,
                            base_checkpoint=r.base_checkpoint, data_fingerprint=r.data_fingerprint,
                            metrics=json.loads(r.metrics or "{}"), note=r.note, created=float(r.created),
                            aliases=sorted(aliases.get(r.version, [])))

    def list(self) -> list[ModelVersion]:
        vt = self.store.table("model_versions")
        aliases = self._aliases_of()
        with self.store.engine.connect() as conn:
            rows = conn.execute(sa.select(vt).order_by(vt.c.seq)).all()
        return [self._to_version(r, aliases) for r in rows]

    def get(self, version: str) -> ModelVersion:
        vt = self.store.table("model_versions")
        with self.store.engine.connect() as conn:
            r = conn.execute(sa.select(vt).where(vt.c.version == version)).first()
        if r is None:
            known = [v.version for v in self.list()]
            raise ConfigError(f"model version {version!r} is not in the registry (known: {known or 'none'}); "
                              "register it with `transferops registry register PATH`")
        return self._to_version(r, self._aliases_of())

    def alias(self, alias: str) -> str | None:
        """The version an alias points at, or None."""
        at = self.store.table("aliases")
        with self.store.engine.connect() as conn:
            v = conn.execute(sa.select(at.c.version).where(at.c.alias == alias)).scalar()
        return None if v is None else str(v)

    def resolve(self, ref: str) -> ModelVersion:
        """An alias (``champion``), a version id (``v3``)."""
        if ref in ALIASES:
            v = self.alias(ref)
            if v is None:
                raise ConfigError(f"no model has the alias {ref!r} yet; register one and run "
                                  "`transferops registry promote VERSION`")
            return self.get(v)
        return self.get(ref)

    # ------------------------------------------------------------------ aliases
    def set_alias(self, alias: str, version: str, *, reason: str | None = None) -> None:
        if alias not in ALIASES:
            raise ConfigError(f"alias: {alias!r} is not one of {ALIASES}")
        self.get(version)
        at, ht = self.store.table("aliases"), self.store.table("alias_history")
        now = time.time()
        with self.store.engine.begin() as conn:
            conn.execute(at.delete().where(at.c.alias == alias))
            conn.execute(at.insert(), [{"alias": alias, "version": version, "updated": now}])
            conn.execute(ht.insert(), [{"alias": alias, "version": version, "ts": now, "reason": reason}])

    def promote(self, version: str, *, reason: str | None = None) -> ModelVersion:
        """Make ``version`` the champion (the previous one stays in the history for rollback)."""
        self.set_alias(CHAMPION, version, reason=reason or "promote")
        if self.alias(CHALLENGER) == version:
            at = self.store.table("aliases")
            with self.store.engine.begin() as conn:
                conn.execute(at.delete().where(at.c.alias == CHALLENGER))
        return self.get(version)

    def history(self, alias: str = CHAMPION) -> builtins.list[dict[str, Any]]:
        ht = self.store.table("alias_history")
        with self.store.engine.connect() as conn:
            rows = conn.execute(sa.select(ht.c.version, ht.c.ts, ht.c.reason)
                                .where(ht.c.alias == alias).order_by(ht.c.id)).all()
        return [{"version": r.version, "ts": float(r.ts), "reason": r.reason} for r in rows]

    def rollback(self) -> ModelVersion:
        """Point ``champion`` back at the version it had before the current one."""
        current = self.alias(CHAMPION)
        if current is None:
            raise ConfigError("rollback: there is no champion yet")
        # Replay the history as a stack: a promotion pushes, a rollback pops, so repeated
        # rollbacks keep walking back instead of flipping between two versions.
        stack: list[str] = []
        for h in self.history(CHAMPION):
            if (h["reason"] or "").startswith("rollback"):
                if stack:
                    stack.pop()
            else:
                stack.append(h["version"])
        previous = stack[-2] if len(stack) >= 2 else None
        if previous is None:
            raise ConfigError(f"rollback: {current} has no earlier champion to roll back to")
        self.set_alias(CHAMPION, previous, reason=f"rollback from {current}")
        return self.get(previous)


__all__ = ["ALIASES", "CHALLENGER", "CHAMPION", "ModelVersion", "Registry"]

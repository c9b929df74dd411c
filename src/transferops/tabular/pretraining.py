"""``transferops adapt --modality tabular --unlabeled rows.parquet --out runs/pre``: self-supervised
pretraining of the FT-Transformer on unlabeled rows (replaced-feature detection,
:func:`transferops.tabular.models.pretrain`). The folder holds the encoder fitted on the unlabeled rows
(``encoder.json``), the pretrained weights (``pretrained.safetensors``) and ``pretrained.json``; train from it
with ``transferops train --data labeled.parquet --checkpoint runs/pre ...``."""

from __future__ import annotations

import json
import shutil
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

from transferops.errors import DataError


def pretrain_tabular(unlabeled: str | Path, *, out: str | Path, feature_columns: Sequence[str] | None = None,
                     drop_columns: Sequence[str] = (), steps: int = 500, lr: float = 1e-3, batch_size: int = 256,
                     n_blocks: int = 2, d_block: int = 64, corrupt: float = 0.3, seed: int = 0) -> dict[str, Any]:
    from safetensors.torch import save_file

    from transferops.modality.tabular.schema import FeatureEncoder, infer_schema, save_encoder
    from transferops.tabular.api import read_rows
    from transferops.tabular.models import FTTConfig, pretrain

    if not 0 < corrupt < 1:
        raise DataError(f"corrupt: {corrupt} must be in (0, 1)")
    df = read_rows(unlabeled)
    for c in drop_columns:
        if c not in df.columns:
            raise DataError(f"drop_columns: {c!r} is not a column of {unlabeled}")
    df = df.drop(columns=list(drop_columns))
    if len(df) < 50:
        raise DataError(f"unlabeled: {len(df)} rows; pretraining needs at least 50")
    df = df.assign(__label__=0)
    schema = infer_schema(df, label="__label__", features=feature_columns)
    frame = schema.coerce(df[schema.names], where="unlabeled")
    enc = FeatureEncoder(schema).fit(frame)
    num, codes = enc.transform(frame)
    cfg = FTTConfig(n_blocks=n_blocks, d_block=d_block, lr=lr, batch_size=batch_size, seed=seed)
    module, record = pretrain(enc.scaled(num), codes, cardinalities=enc.cardinalities, config=cfg, steps=steps,
                              corrupt=corrupt)
    outp = Path(out)
    if outp.exists():
        shutil.rmtree(outp)
    outp.mkdir(parents=True)
    save_encoder(outp, enc)
    save_file({k: v.contiguous() for k, v in module.state_dict().items()}, outp / "pretrained.safetensors")
    hist = record.get("history") or []
    summary = {"objective": "replaced-feature detection", "corrupt": corrupt, "steps": record.get("steps"),
               "rows": len(df), "train_seconds": round(float(record.get("train_seconds", 0.0)), 2),
               "final_train_loss": hist[-1].get("train_loss") if hist else None}
    doc = {"kind": "tabular_pretrained", "config": asdict(cfg), "summary": summary,
           "features": schema.to_dict()["features"]}
    (outp / "pretrained.json").write_text(json.dumps(doc, indent=1))
    return doc


__all__ = ["pretrain_tabular"]

"""The ``tabular`` artifact kind: a folder written by ``transferops train`` on a table (or its export).

Files (no pickle): ``transferops.json`` (manifest: ``kind: tabular``, ``modality: tabular``, ``schema``,
``model`` = ``trees`` | ``transformer`` | ``stack``), ``encoder.json`` (schema + fitted encoder),
``trees.skops`` (always: the baseline), ``transformer.safetensors`` + ``transformer.json`` (when trained),
``stack.json`` (meta-learner), ``reference.json`` (drift reference), ``data/*.parquet`` (splits). An export
adds ``transformer.onnx`` and the manifest's ``export`` section; the transformer then runs on ONNX Runtime.

``transferops.load(folder)`` returns a :class:`TabularModel`; ``predict`` / ``predict_proba`` take a list of
row objects or a DataFrame, checked against the schema (a missing / extra / wrongly typed column is a
:class:`~transferops.errors.DataError` naming it).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from transferops.artifacts.classifier import ClassifierBase
from transferops.artifacts.kinds import register_kind
from transferops.errors import ArtifactError
from transferops.modality.tabular.baseline import TreeModel
from transferops.modality.tabular.schema import FeatureEncoder, TableSchema, load_encoder

KIND = "tabular"
TREES_FILE, STACK_FILE, ONNX_FILE, REFERENCE_FILE = "trees.skops", "stack.json", "transformer.onnx", "reference.json"
MODELS = ("trees", "transformer", "stack")


def is_tabular_folder(path: str | Path) -> bool:
    f = Path(path) / "transferops.json"
    if not f.is_file():
        return False
    try:
        doc = json.loads(f.read_text())
    except (OSError, ValueError):
        return False
    return isinstance(doc, dict) and doc.get("kind") == KIND


class _OnnxNet:
    """The exported transformer on ONNX Runtime (same inputs as the PyTorch module)."""

    def __init__(self, path: Path, threads: int | None) -> None:
        from transferops._extras import require

        ort = require("onnxruntime", "onnx")
        so = ort.SessionOptions()
        if threads:
            so.intra_op_num_threads = threads
        self.session = ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])
        self.inputs = [i.name for i in self.session.get_inputs()]
        b = self.session.get_inputs()[0].shape[0]
        self.batch = int(b) if isinstance(b, int) else 0  # fixed batch of the graph (0: dynamic)

    def predict_proba(self, xc: np.ndarray, xk: np.ndarray) -> np.ndarray:
        n = len(xc)
        feed: dict[str, np.ndarray] = {"x_cont": xc.astype(np.float32), "x_cat": xk.astype(np.int64)}
        step = self.batch or max(n, 1)
        outs: list[np.ndarray] = []
        for a in range(0, n, step):
            chunk = {k: feed[k][a:a + step] for k in self.inputs}
            m = len(next(iter(chunk.values())))
            if self.batch and m < self.batch:  # pad the last chunk to the graph's batch
                chunk = {k: np.concatenate([v, np.repeat(v[-1:], self.batch - m, axis=0)]) for k, v in chunk.items()}
            res: Any = self.session.run(None, chunk)
            outs.append(np.asarray(res[0])[:m])
        logits = np.concatenate(outs) if outs else np.zeros((0, 2), dtype=np.float32)
        z = logits - logits.max(1, keepdims=True)
        e = np.exp(z)
        return np.asarray(e / e.sum(1, keepdims=True), dtype=np.float64)


class TabularModel(ClassifierBase):
    """A trained tabular model folder (trees, FT-Transformer or their stack)."""

    runtime: ClassVar[str] = "sklearn"
    #: the server's route for this model's input (``POST /v1/models/{name}/rows``)
    serve_route: ClassVar[str] = "rows"
    no_torch_reason: ClassVar[str | None] = "{path} is a tabular model; its transformer (if any) is .transformer"

    def __init__(self, path: str | Path, *, device: str | None = None, threads: int | None = None,
                 **_: Any) -> None:
        super().__init__(path, device=device, threads=threads)
        self.encoder: FeatureEncoder = load_encoder(self.path)
        self.schema: TableSchema = self.encoder.schema
        self.chosen: str = str(self.manifest.get("model", "trees"))
        if self.chosen not in MODELS:
            raise ArtifactError(f"{self.path}: manifest field 'model' must be one of {', '.join(MODELS)}, got "
                                f"{self.chosen!r}")
        self._members: dict[str, Any] = {}
        self.exported = bool(self.manifest.get("export"))

    @property
    def modality(self) -> str:
        return "tabular"

    @property
    def serve_info(self) -> dict[str, Any]:
        return {"model": self.chosen, "features": self.schema.types, "exported": self.exported, "modality": "tabular",
                "runtime": "onnx" if self.exported else "sklearn" if self.chosen == "trees" else "pytorch/sklearn",
                "decision_threshold": self.manifest.get("decision_threshold")}

    @property
    def tokenizer(self) -> Any:
        return self.encoder

    def member(self, name: str) -> Any:
        if name not in self._members:
            if name == "trees":
                self._members[name] = TreeModel.load(self.path / TREES_FILE, n_classes=len(self.labels))
            elif name == "transformer":
                onnx = self.path / ONNX_FILE
                if self.exported and onnx.exists():
                    self._members[name] = _OnnxNet(onnx, self._threads)
                else:
                    from transferops.tabular.models import FTTModel

                    if self._threads:
                        import torch

                        torch.set_num_threads(self._threads)
                    self._members[name] = FTTModel.load(self.path)
            elif name == "stack":
                from transferops.tabular.models import StackModel

                f = self.path / STACK_FILE
                if not f.exists():
                    raise ArtifactError(f"{self.path}: {STACK_FILE} is missing; the folder is incomplete")
                self._members[name] = StackModel.from_dict(json.loads(f.read_text()))
        return self._members[name]

    @property
    def transformer(self) -> Any:
        return self.member("transformer")

    def encode(self, rows: Any, *, where: str = "rows") -> tuple[np.ndarray, np.ndarray]:
        frame = self.schema.coerce(rows, where=where)
        return self.encoder.transform(frame)

    def proba_of(self, name: str, num: np.ndarray, codes: np.ndarray) -> np.ndarray:
        if name == "trees":
            return np.asarray(self.member("trees").predict_proba(num, codes))
        if name == "transformer":
            return np.asarray(self.member("transformer").predict_proba(self.encoder.scaled(num), codes))
        members = self.manifest.get("stack_members") or ["trees", "transformer"]
        return np.asarray(self.member("stack").predict_proba([self.proba_of(m, num, codes) for m in members]))

    def predict_proba(self, rows: Any, *, batch_size: int = 64, calibrated: bool = True) -> np.ndarray:  # type: ignore[override]
        num, codes = self.encode(rows)
        return self.proba_of(self.chosen, num, codes)

    def infer(self, rows: Sequence[Any], *, batch_size: int = 64) -> tuple[np.ndarray, np.ndarray]:  # type: ignore[override]
        num, codes = self.encode(rows)
        p = self.proba_of(self.chosen, num, codes)
        return np.log(np.clip(p, 1e-12, 1.0)), self.encoder.scaled(num)

    def predict(self, rows: Any, *, batch_size: int = 64) -> list[Any]:  # type: ignore[override]
        return self.decide(self.predict_proba(rows))

    # ---- the server's modality hooks (deploy.runtime.Runner / deploy.hub.ModelHub look for these names)
    def row_dicts(self, frame: Any) -> list[dict[str, Any]]:
        """The feature columns of ``frame`` as JSON-ready row objects (NaN -> None)."""
        import pandas as pd

        sub = frame[self.schema.names]
        return [{k: (None if v is None or (not isinstance(v, str) and bool(pd.isna(v))) else
                     (v.item() if isinstance(v, np.generic) else
                      v.isoformat() if isinstance(v, pd.Timestamp) else v))
                 for k, v in r.items()} for r in sub.to_dict("records")]

    def warmup_inputs(self) -> list[dict[str, Any]]:
        """Two validation rows: the hub's warm-up call (the text default would fail the schema)."""
        return self.row_dicts(self.split("validation").head(2))

    def split_inputs(self, frame: Any) -> tuple[list[dict[str, Any]], list[str]]:
        """(rows, labels) of a saved split: what ``--target-auto-accuracy`` derives its threshold from."""
        y = frame[self.schema.label].map(lambda v: str(v).lower() if isinstance(v, bool) else str(v))
        return self.row_dicts(frame), y.tolist()

    def serve_features(self, rows: Sequence[Any]) -> dict[str, np.ndarray]:
        """The text features of the shared prediction log do not apply to rows: zeros (the row itself is
        logged as JSON in ``text``; :mod:`transferops.tabular.monitoring` reads it back)."""
        z = np.zeros(len(rows))
        return {"n_tokens": z.astype(int), "n_chars": z.astype(int), "unk_rate": z}

    def inputs_from_frame(self, chunk: Any, *, source: str = "input", row_offset: int = 0) -> Any:
        """``transferops predict``'s hook: the feature columns of a file chunk (other columns, e.g. the label or
        the time, are ignored), checked against the schema; an error names the file's row and column."""
        from transferops.errors import DataError

        missing = [c for c in self.schema.names if c not in chunk.columns]
        if missing:
            raise DataError(f"{source}: column {missing[0]!r} is missing (the model takes "
                            f"{', '.join(self.schema.names)})")
        frame = chunk[self.schema.names].reset_index(drop=True)
        try:
            return self.schema.coerce(frame, where="rows")
        except DataError as exc:  # rows[i].col within the chunk -> the file's row number
            msg = str(exc)
            if msg.startswith("rows[") and "]." in msg:  # "rows[3].income: ..." -> "FILE: row 4, income: ..."
                i, rest = msg[5:].split("].", 1)
                msg = f"{source}: row {row_offset + int(i) + 1}, {rest}"
            raise DataError(msg) from None

    def logged_input(self, row: Mapping[str, Any]) -> str:
        """What the prediction log keeps of a row: its feature columns (and the id column) as JSON."""
        keep = [*self.schema.names, *([self.schema.id_column] if self.schema.id_column else [])]
        return json.dumps({k: row[k] for k in keep if k in row}, default=str)


def load_tabular(path: str | Path, **kw: Any) -> TabularModel:
    return TabularModel(path, **kw)


register_kind(KIND, load_tabular)

__all__ = ["KIND", "MODELS", "ONNX_FILE", "REFERENCE_FILE", "STACK_FILE", "TREES_FILE", "TabularModel",
           "is_tabular_folder", "load_tabular"]

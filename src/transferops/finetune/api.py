"""``transferops.train``: data in, a saved, documented, baseline-compared model folder out."""

from __future__ import annotations

import importlib
import os
import shutil
import stat
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

import transferops
from transferops._progress import say
from transferops._util import package_versions, sha256_file, sha256_texts, utcnow, write_json
from transferops.artifacts.model import TransferOpsModel
from transferops.baselines import baseline_report
from transferops.checkpoints import resolve_checkpoint
from transferops.cli.main import module_exists
from transferops.constants import (
    DATA_DIR,
    LABEL_COL,
    MANIFEST_NAME,
    MODEL_DIR,
    TEST_SPLIT,
    TEXT_COL,
    TRAIN_SPLIT,
    TRAINING_STATE_DIR,
    VALIDATION_SPLIT,
)
from transferops.data import (
    ColumnMap,
    LabeledData,
    SplitConfig,
    Splits,
    find_leakage,
    load_labeled,
    make_splits,
)
from transferops.errors import ConfigError, DataError
from transferops.finetune.config import TrainConfig
from transferops.finetune.strategies import choose_auto
from transferops.finetune.trainer import FineTuner
from transferops.metrics import classification_metrics, encode_labels
from transferops.modeling import set_threads, sigmoid, softmax

#: Stage modules that add to a fresh artifact (calibration, monitoring reference profile...).
#: Each exposes ``post_train(artifact_dir: Path, config: TrainConfig) -> dict | None``.
POST_TRAIN_HOOKS: tuple[str, ...] = (
    "transferops.evaluate.calibration",
    "transferops.monitor.profile",
)

#: Transfer must beat the baseline by this much (absolute, on the headline metric) — Mistake 1.
BASELINE_MARGIN = 0.05


@dataclass
class TrainResult:
    path: Path
    manifest: dict[str, Any]
    warnings: list[str] = field(default_factory=list)

    @property
    def model(self) -> TransferOpsModel:
        return TransferOpsModel(self.path)

    @property
    def test_metrics(self) -> dict[str, float]:
        return dict(self.manifest["metrics"]["test"])

    def to_dict(self) -> dict[str, Any]:
        return {"path": str(self.path), "warnings": self.warnings, **self.manifest}

    def summary(self) -> str:
        m = self.manifest
        t, v = m["metrics"]["test"], m["metrics"]["validation"]
        lines = [
            f"model saved to {self.path}",
            f"  base {m['base']['name']} · strategy {m['strategy']['name']} · task {m['task']} · "
            f"{len(m['labels'])} labels · splits {m['splits']['sizes']}",
            f"  validation: accuracy {v['accuracy']:.4f}  macro-F1 {v['macro_f1']:.4f}",
            f"  test:       accuracy {t['accuracy']:.4f}  macro-F1 {t['macro_f1']:.4f}",
        ]
        b = m.get("baseline", {}).get("tfidf_logreg")
        if b:
            bm = b["metrics"]
            gap = t["macro_f1"] - bm["macro_f1"]
            lines.append(f"  baseline TF-IDF+LR test: accuracy {bm['accuracy']:.4f}  macro-F1 "
                         f"{bm['macro_f1']:.4f}  (gap {gap:+.4f})")
        lk = m.get("leakage", {})
        if lk:
            lines.append(f"  leakage train↔test: {lk.get('exact_duplicates', 0)} exact, "
                         f"{lk.get('near_duplicates', 0)} near-duplicate pairs"
                         + (" (removed from train)" if m["config"].get("dedupe") else ""))
        tm = m["timings"]
        lines.append(f"  training {tm['train_seconds']:.1f}s · {tm['examples_per_second']:.1f} examples/s")
        lines += [f"  warning: {w}" for w in self.warnings]
        return "\n".join(lines)


def train(
    data: str | Path | pd.DataFrame,
    *,
    out: str | Path,
    text_column: str = "text",
    label_column: str | None = "label",
    label_columns: list[str] | None = None,
    label_sep: str | None = None,
    time_column: str | None = None,
    group_column: str | None = None,
    id_column: str | None = None,
    slice_columns: list[str] | None = None,
    config: TrainConfig | None = None,
    split: SplitConfig | None = None,
    skip_bad_rows: bool = False,
    resume: bool = False,
    keep_state: bool = False,
    encoding: str = "utf-8",
    name: str | None = None,
    validation_data: str | Path | pd.DataFrame | None = None,
    test_data: str | Path | pd.DataFrame | None = None,
    **overrides: Any,
) -> TrainResult:
    """Train a classifier and save it as an artifact folder.

    >>> res = transferops.train("news.csv", out="runs/news", checkpoint="minilm-l6",
    ...                         strategy="lora", epochs=2)                          # doctest: +SKIP
    >>> print(res.summary())                                                        # doctest: +SKIP

    ``validation_data`` and ``test_data`` (same columns as ``data``) use predefined splits instead of
    splitting ``data``; give both or neither.
    """
    cfg = config or TrainConfig()
    if overrides:
        merged = {**cfg.to_dict(), **overrides}
        cfg = TrainConfig.from_dict(merged)
    split_cfg = split or SplitConfig(seed=cfg.seed)
    set_threads(cfg.threads)
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    out = Path(out)
    if (out / MANIFEST_NAME).exists() and not resume:
        raise ConfigError(f"out: {out} already holds a trained model; choose another --out, or delete it")
    if out.exists() and not resume and (out / TRAINING_STATE_DIR).exists():
        raise ConfigError(f"out: {out} holds an interrupted run; pass --resume to continue it, or delete it")
    ckpt = resolve_checkpoint(cfg.checkpoint)
    t_start = time.perf_counter()

    columns = ColumnMap(text=text_column, label=label_column, label_columns=label_columns, label_sep=label_sep,
                        time=time_column, group=group_column, id=id_column, slices=list(slice_columns or []))
    if time_column and split is None:
        split_cfg = SplitConfig(method="temporal", seed=cfg.seed)
    elif group_column and split is None:
        split_cfg = SplitConfig(method="group", seed=cfg.seed)
    rejects = out / "rejects.csv"
    labeled = load_labeled(data, columns, task=cfg.task, skip_bad_rows=skip_bad_rows, rejects_path=rejects,
                           encoding=encoding)
    if labeled.n_rejected:
        say(f"skipped {labeled.n_rejected} bad rows; see {labeled.rejects_path}")
    if cfg.baseline:  # memory guard before splitting and leakage checks (all rows: an upper bound)
        from transferops.baselines import TfidfBaseline, check_baseline_memory

        check_baseline_memory(labeled.texts, len(labeled.labels), TfidfBaseline.max_features)
    if cfg.task != "auto" and cfg.task != labeled.task and not (cfg.task == "multiclass" and labeled.task == "binary"):
        raise ConfigError(f"task: '{cfg.task}' requested but the data looks {labeled.task}")
    task = labeled.task
    multilabel = task == "multilabel"

    if (validation_data is None) != (test_data is None):
        raise ConfigError("validation_data and test_data: give both predefined splits, or neither")
    predefined = None
    if validation_data is not None and test_data is not None:
        val_l = load_labeled(validation_data, columns, task=labeled.task, encoding=encoding,
                             known_labels=labeled.labels)
        test_l = load_labeled(test_data, columns, task=labeled.task, encoding=encoding, known_labels=labeled.labels)
        predefined = Splits(labeled, val_l, test_l)
        split_cfg = SplitConfig(method="random", seed=cfg.seed)
    splits = _load_or_make_splits(labeled, split_cfg, out, resume, predefined)
    data_dir = out / DATA_DIR
    test_sha = sha256_file(data_dir / TEST_SPLIT)

    # Leakage: exact + near-duplicates on the checkpoint's own embeddings.
    leak = _leakage(splits, cfg, ckpt.name)
    warnings_: list[str] = []
    if leak.exact_pairs or leak.near_pairs:
        warnings_.append(leak.summary() + ("; removed from train (--dedupe)" if cfg.dedupe
                                           else "; pass --dedupe to drop them from train"))
    train_part = splits.train
    if cfg.dedupe and leak.train_indices_to_drop:
        keep = np.setdiff1d(np.arange(len(train_part)), leak.train_indices_to_drop)
        train_part = train_part.subset(keep)

    labels = labeled.labels
    y_tr = encode_labels(train_part.y, labels, multilabel)
    y_va = encode_labels(splits.validation.y, labels, multilabel)
    y_te = encode_labels(splits.test.y, labels, multilabel)

    baseline: dict[str, Any] = {}
    if cfg.baseline:
        say("fitting the TF-IDF + logistic-regression baseline ...")
        baseline = baseline_report(train_part.texts, y_tr, splits.test.texts, y_te, n_classes=len(labels),
                                   multilabel=multilabel, seed=cfg.seed)

    strategy: str = cfg.strategy
    reason = ""
    if strategy == "auto":
        n_layers = int(ckpt.config().get("num_hidden_layers", 6))
        strategy, extra, reason = choose_auto(len(train_part), n_layers)
        cfg = TrainConfig.from_dict({**cfg.to_dict(), **extra})
        say(f"auto strategy: {strategy} — {reason}")

    ft = FineTuner(cfg, strategy=strategy, strategy_reason=reason)
    ft.fit(train_part.texts, y_tr, splits.validation.texts, y_va, labels=labels, task=task,
           checkpoint_path=ckpt.path, state_dir=out / TRAINING_STATE_DIR, resume=resume)

    val_logits = ft.predict_logits(splits.validation.texts)
    test_logits = ft.predict_logits(splits.test.texts)
    to_p = sigmoid if multilabel else softmax
    metrics = {
        "validation": classification_metrics(y_va, to_p(val_logits), multilabel=multilabel),
        "test": classification_metrics(y_te, to_p(test_logits), multilabel=multilabel),
    }

    mdir = out / MODEL_DIR
    if mdir.exists():
        shutil.rmtree(mdir)
    ft.model_.save_pretrained(str(mdir), safe_serialization=True)
    ft.tokenizer_.save_pretrained(str(mdir))

    bm = baseline.get("tfidf_logreg", {}).get("metrics")
    if bm:
        gap = metrics["test"]["macro_f1"] - bm["macro_f1"]
        if gap < 0:
            warnings_.append(f"negative transfer: the fine-tuned model is {-gap:.3f} macro-F1 BELOW the "
                             "TF-IDF baseline on test (source text §5.1); ship the baseline or revisit the "
                             "checkpoint choice")
        elif gap < BASELINE_MARGIN:
            warnings_.append(f"transfer beats the TF-IDF baseline by only {gap:.3f} macro-F1 (< "
                             f"{BASELINE_MARGIN:.2f}): question the added complexity (source text, Mistake 1)")

    manifest: dict[str, Any] = {
        "format_version": 1,
        "kind": "model",
        "name": name or out.name,
        "transferops_version": transferops.__version__,
        "created": utcnow(),
        "base": {"name": ckpt.name, "path": str(ckpt.path), "source": ckpt.source, "sha256": ckpt.sha256(),
                 "params": ft.strategy_info.total_params},
        "task": task,
        "labels": labels,
        "strategy": ft.strategy_info.to_dict(),
        "config": cfg.to_dict(),
        "seed": cfg.seed,
        "data": {"source": labeled.source, "fingerprint": sha256_texts(labeled.texts, labeled.y),
                 "rows": len(labeled) + labeled.n_rejected, "rows_used": len(labeled),
                 "rejected": labeled.n_rejected, "rejects_file": labeled.rejects_path,
                 "columns": columns.__dict__, "label_counts": labeled.label_counts()},
        "splits": {"method": split_cfg.method, "seed": split_cfg.seed, "sizes": splits.sizes(),
                   "train_used": len(train_part), "test_sha256": test_sha,
                   "files": {"train": f"{DATA_DIR}/{TRAIN_SPLIT}", "validation": f"{DATA_DIR}/{VALIDATION_SPLIT}",
                             "test": f"{DATA_DIR}/{TEST_SPLIT}"}},
        "leakage": leak.to_dict(),
        "metrics": metrics,
        "baseline": baseline,
        "history": ft.result_.history,
        "training": ft.result_.to_dict(),
        "timings": {"train_seconds": round(ft.result_.train_seconds, 2),
                    "examples_per_second": round(ft.result_.examples_per_second, 2),
                    "total_seconds": round(time.perf_counter() - t_start, 2)},
        "versions": package_versions(),
        "warnings": warnings_,
        "evaluations": [],
    }
    write_json(out / MANIFEST_NAME, manifest)
    for mod_name in POST_TRAIN_HOOKS:
        if not module_exists(mod_name):
            continue
        mod = importlib.import_module(mod_name)
        hook = getattr(mod, "post_train", None)
        if hook is not None:
            hook(out, cfg)
    if not keep_state:
        shutil.rmtree(out / TRAINING_STATE_DIR, ignore_errors=True)
    from transferops.artifacts.model import read_manifest

    return TrainResult(out, read_manifest(out), warnings_)


def _save_split(part: LabeledData, path: Path) -> None:
    df = part.frame.copy()
    if part.task == "multilabel":
        df[LABEL_COL] = df[LABEL_COL].apply(list)
    df.to_parquet(path, index=False)


def _load_or_make_splits(labeled: LabeledData, cfg: SplitConfig, out: Path, resume: bool,
                         predefined: Splits | None = None) -> Splits:
    d = out / DATA_DIR
    paths = [d / TRAIN_SPLIT, d / VALIDATION_SPLIT, d / TEST_SPLIT]
    if all(p.exists() for p in paths):
        parts = []
        for p in paths:
            df = pd.read_parquet(p)
            if labeled.task == "multilabel":
                df[LABEL_COL] = df[LABEL_COL].apply(list)
            parts.append(LabeledData(df, labeled.task, labeled.labels, labeled.columns, labeled.source))
        fresh = predefined or make_splits(labeled, cfg)
        if sha256_texts(fresh.test.texts) != sha256_texts(parts[2].texts):
            raise DataError(f"{out}: the saved test split differs from the one this data and seed produce; "
                            "resume with the same data, or train into a new --out")
        return Splits(*parts)
    splits = predefined or make_splits(labeled, cfg)
    d.mkdir(parents=True, exist_ok=True)
    _save_split(splits.train, d / TRAIN_SPLIT)
    _save_split(splits.validation, d / VALIDATION_SPLIT)
    _save_split(splits.test, d / TEST_SPLIT)
    # The test split is write-once: read-only on disk, fingerprinted in the manifest.
    os.chmod(d / TEST_SPLIT, stat.S_IRUSR | stat.S_IRGRP | stat.S_IROTH)
    return splits


def _leakage(splits: Splits, cfg: TrainConfig, checkpoint: str) -> Any:
    train_texts, test_texts = splits.train.texts, splits.test.texts
    if not cfg.check_near_duplicates:
        return find_leakage(train_texts, test_texts)
    from transferops.modeling import FrozenEncoder

    say("checking train/test leakage (exact + near-duplicate embeddings) ...")
    # 64 tokens are plenty to recognise a near-copy and halve the cost of this pass.
    enc = FrozenEncoder(checkpoint, max_length=64, batch_size=64)
    emb_tr = enc.embed(train_texts, desc="leakage: train")
    emb_te = enc.embed(test_texts, desc="leakage: test")
    return find_leakage(train_texts, test_texts, train_emb=emb_tr, test_emb=emb_te,
                        threshold=cfg.near_duplicate_threshold)


__all__ = ["TEXT_COL", "TrainResult", "train"]

"""``train`` on a table: schema, splits, the model search (trees / FT-Transformer / stack), imbalance
handling, thresholds, the random-vs-temporal comparison, and the model folder.

The search is honest about what it compares: every candidate is fitted on the same training split,
scored on the same validation split (PR-AUC for binary tasks, macro-F1 otherwise; :func:`val_score`), and
its test metrics at its own validation-tuned threshold are recorded beside the chosen one's.
"""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from numbers import Integral, Real
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from transferops._progress import say
from transferops._validation import Constraints, Interval, Options, validate_params
from transferops.errors import ConfigError, DataError
from transferops.modality.tabular.baseline import TreeModel, class_weight_vector
from transferops.modality.tabular.drift import build_reference
from transferops.modality.tabular.schema import FeatureEncoder, TableSchema, infer_schema, load_encoder, save_encoder

if __import__("typing").TYPE_CHECKING:
    import pandas as pd

CANDIDATES = ("trees", "transformer", "stack")


@dataclass
class TabularConfig:
    """Options of tabular training (``transferops train`` flags of the same names)."""

    models: tuple[str, ...] = CANDIDATES
    class_weight: Any = None  # None, "balanced", or the positive class's weight (e.g. 100.0)
    loss: str = "ce"
    focal_gamma: float = 2.0
    smote: bool = False
    threshold_target: str = "max-f1"
    epochs: int = 30
    batch_size: int = 128
    lr: float = 1e-3
    n_blocks: int = 2
    d_block: int = 64
    seed: int = 0
    folds: int = 3
    validation_size: float = 0.1
    test_size: float = 0.2
    split: str = "auto"  # auto: temporal with a time column, else stratified
    compare_random_split: bool = True
    positive_label: str | None = None
    tree_iterations: int = 300

    _parameter_constraints: ClassVar[Constraints] = {
        "loss": Options(("ce", "focal")), "focal_gamma": Interval(Real, 0, 10),
        "epochs": Interval(Integral, 1, 10_000), "batch_size": Interval(Integral, 1, 1 << 16),
        "lr": Interval(Real, 0, 1, closed="right"), "n_blocks": Interval(Integral, 1, 12),
        "d_block": Interval(Integral, 8, 1024), "seed": Interval(Integral, 0, None),
        "folds": Interval(Integral, 2, 10), "validation_size": Interval(Real, 0, 1, closed="neither"),
        "test_size": Interval(Real, 0, 1, closed="neither"),
        "split": Options(("auto", "temporal", "stratified", "random", "group")),
        "tree_iterations": Interval(Integral, 1, 100_000),
    }

    def __post_init__(self) -> None:
        validate_params(self, self._parameter_constraints)
        self.models = tuple(self.models)
        bad = [m for m in self.models if m not in CANDIDATES]
        if bad:
            raise ConfigError(f"models: {bad[0]!r} is not one of {', '.join(CANDIDATES)}")
        if "trees" not in self.models:
            self.models = ("trees", *self.models)  # the baseline is always trained
        if self.class_weight not in (None, "balanced"):
            try:
                w = float(self.class_weight)
            except (TypeError, ValueError):
                raise ConfigError(f"class_weight: {self.class_weight!r} must be 'balanced' or a positive number "
                                  "(the positive class's weight, e.g. 100)") from None
            if not w > 0 or not np.isfinite(w):
                raise ConfigError(f"class_weight: {w!r} must be a positive number")
            self.class_weight = w
        if self.validation_size + self.test_size >= 0.9:
            raise ConfigError("validation_size + test_size: must leave at least 10% of the rows for training")
        from transferops.evaluate.thresholds import parse_target

        parse_target(self.threshold_target)  # a clear error for a bad target


# ------------------------------------------------------------------------------------------ data


def read_rows(path: str | Path) -> pd.DataFrame:
    """A CSV (types inferred) or Parquet/JSONL table."""
    import pandas as pd

    p = Path(path)
    if not p.exists():
        raise DataError(f"{p}: file not found")
    if p.suffix.lower() in (".csv", ".tsv"):
        try:
            return pd.read_csv(p, sep="\t" if p.suffix.lower() == ".tsv" else ",")
        except (pd.errors.ParserError, UnicodeDecodeError) as exc:
            raise DataError(f"{p}: cannot be read as CSV ({str(exc).splitlines()[0]})") from exc
    from transferops.data.loading import read_table

    return read_table(p)


def looks_tabular(path: str | Path, text_column: str = "text") -> bool:
    """True for a table without the text column (``train`` then takes the tabular path)."""
    p = Path(path)
    if not p.is_file():
        return False
    try:
        if p.suffix.lower() == ".parquet":
            import pyarrow.parquet as pq

            cols = [str(n) for n in pq.read_schema(p).names]
        elif p.suffix.lower() in (".csv", ".tsv"):
            with open(p, encoding="utf-8", errors="replace") as fh:
                cols = [c.strip().strip('"') for c in fh.readline().rstrip("\n").split(
                    "\t" if p.suffix.lower() == ".tsv" else ",")]
        else:
            return False
    except OSError:
        return False
    return text_column not in cols and len(cols) >= 2


@dataclass
class Splits:
    train: np.ndarray
    validation: np.ndarray
    test: np.ndarray
    method: str
    info: dict[str, Any] = field(default_factory=dict)


def make_splits(df: pd.DataFrame, y: np.ndarray, schema: TableSchema, cfg: TabularConfig, *,
                method: str | None = None, seed: int | None = None) -> Splits:
    """Row indices of train / validation / test. Temporal: sorted by the time column, oldest rows train,
    newest test (no shuffling). Stratified/random: scikit-learn's shuffled splits. Group: no group on two
    sides."""
    import pandas as pd
    from sklearn.model_selection import GroupShuffleSplit, train_test_split

    seed = cfg.seed if seed is None else seed
    m = method or cfg.split
    if m == "auto":
        m = "temporal" if schema.time_column else "group" if schema.group_column else "stratified"
    n = len(df)
    idx = np.arange(n)
    vs, ts = cfg.validation_size, cfg.test_size
    if m == "temporal":
        if not schema.time_column:
            raise ConfigError("split: temporal needs --time-column")
        t = pd.to_datetime(df[schema.time_column], errors="coerce", format="mixed", utc=True)
        if t.isna().any():
            i = int(np.flatnonzero(t.isna().to_numpy())[0])
            raise DataError(f"time_column: row {i + 1} has {df[schema.time_column].iloc[i]!r}, not a date/time")
        order = np.argsort(t.to_numpy(), kind="stable")
        n_test, n_val = int(round(ts * n)), int(round(vs * n))
        tr, va, te = order[:n - n_test - n_val], order[n - n_test - n_val:n - n_test], order[n - n_test:]
        info = {"train_until": str(t.iloc[tr].max()), "validation_from": str(t.iloc[va].min()),
                "test_from": str(t.iloc[te].min())}
        return Splits(tr, va, te, m, info)
    if m == "group":
        if not schema.group_column:
            raise ConfigError("split: group needs --group-column")
        g = df[schema.group_column].astype(str).to_numpy()
        rest, te = next(GroupShuffleSplit(1, test_size=ts, random_state=seed).split(idx, groups=g))
        tr_, va_ = next(GroupShuffleSplit(1, test_size=vs / (1 - ts), random_state=seed).split(rest, groups=g[rest]))
        return Splits(rest[tr_], rest[va_], te, m)
    strat = y if m == "stratified" and np.bincount(y).min() >= 3 else None
    rest, te = train_test_split(idx, test_size=ts, random_state=seed, stratify=strat)
    tr, va = train_test_split(rest, test_size=vs / (1 - ts), random_state=seed,
                              stratify=None if strat is None else y[rest])
    return Splits(np.sort(tr), np.sort(va), np.sort(te), "stratified" if strat is not None else "random")


def encode_labels(raw: pd.Series, positive: str | None) -> tuple[np.ndarray, list[str]]:
    """Integer classes and label names; binary: ``[negative, positive]`` with the positive class the
    minority one unless ``positive`` names it."""
    vals = raw.map(lambda v: str(v).lower() if isinstance(v, bool) else str(v))
    counts = vals.value_counts()
    if len(counts) < 2:
        raise DataError(f"label_column: needs at least two classes, found {list(counts.index)}")
    if len(counts) == 2:
        if positive is not None and positive not in counts.index:
            raise ConfigError(f"positive_label: {positive!r} is not a label (labels: {', '.join(counts.index)})")
        pos = positive if positive is not None else str(counts.index[-1]) if counts.iloc[0] != counts.iloc[1] \
            else sorted(counts.index)[1]
        labels = [str(next(c for c in counts.index if c != pos)), str(pos)]
    else:
        labels = sorted(str(c) for c in counts.index)
    index = {v: i for i, v in enumerate(labels)}
    return vals.map(index).to_numpy(dtype=np.int64), labels


# ------------------------------------------------------------------------------------------ fitting


@dataclass
class Encoded:
    num: np.ndarray
    codes: np.ndarray
    y: np.ndarray


def scores(proba: np.ndarray, y: np.ndarray, threshold: float | None) -> dict[str, float]:
    """Test metrics: binary — F1/precision/recall at ``threshold``, PR-AUC, ROC-AUC; multi-class —
    accuracy and macro-F1."""
    from sklearn.metrics import average_precision_score, roc_auc_score

    from transferops.metrics import label_metrics

    if proba.shape[1] == 2:
        t = 0.5 if threshold is None else threshold
        pred = (proba[:, 1] >= t).astype(np.int64)
        out = label_metrics(y, pred, n_classes=2, positive_index=1)
        both = len(np.unique(y)) == 2
        out["pr_auc"] = float(average_precision_score(y, proba[:, 1])) if both else float("nan")
        out["roc_auc"] = float(roc_auc_score(y, proba[:, 1])) if both else float("nan")
        out["threshold"] = float(t)
        out["positive_rate"] = float(pred.mean()) if len(pred) else float("nan")
        return {k: round(v, 4) for k, v in out.items()}
    return {k: round(v, 4) for k, v in label_metrics(y, proba.argmax(1), n_classes=proba.shape[1]).items()}


def tune_threshold(proba: np.ndarray, y: np.ndarray, target: str) -> float | None:
    from transferops.evaluate.thresholds import choose_threshold

    if proba.shape[1] != 2 or not (y == 1).any():
        return None
    return float(choose_threshold(proba[:, 1], y == 1, target).threshold)


def _smote(enc: Encoded, encoder: FeatureEncoder, seed: int) -> Encoded:
    """SMOTE on the training rows only (imbalanced-learn; SMOTENC when there are categorical columns).
    Missing numeric values are median-imputed first (SMOTE interpolates between rows)."""
    from transferops._extras import require

    require("imblearn", "tabular")
    from imblearn.over_sampling import SMOTE, SMOTENC

    num = np.where(np.isnan(enc.num), np.asarray(encoder.median_), enc.num) if enc.num.shape[1] else enc.num
    x = np.hstack([num, enc.codes.astype(np.float64)])
    k = int(min(5, np.bincount(enc.y).min() - 1))
    if k < 1:
        raise DataError("smote: a class has fewer than 2 training rows; SMOTE needs neighbours")
    d = num.shape[1]
    if enc.codes.shape[1] and d:
        sm: Any = SMOTENC(categorical_features=list(range(d, x.shape[1])), k_neighbors=k, random_state=seed)
    elif enc.codes.shape[1]:
        from imblearn.over_sampling import SMOTEN

        sm = SMOTEN(k_neighbors=k, random_state=seed)
    else:
        sm = SMOTE(k_neighbors=k, random_state=seed)
    xr, yr = sm.fit_resample(x, enc.y)
    return Encoded(np.asarray(xr[:, :d], dtype=np.float64), np.asarray(xr[:, d:]).round().astype(np.int64),
                   np.asarray(yr, dtype=np.int64))


def _ftt_config(cfg: TabularConfig, base: dict[str, Any] | None = None) -> Any:
    from transferops.tabular.models import FTTConfig

    kw = dict(base or {})
    kw.update(epochs=cfg.epochs, batch_size=cfg.batch_size, lr=cfg.lr, loss=cfg.loss, focal_gamma=cfg.focal_gamma,
              seed=cfg.seed)
    if not base:
        kw.update(n_blocks=cfg.n_blocks, d_block=cfg.d_block)
    return FTTConfig(**kw)


def _weights(cfg: TabularConfig, y: np.ndarray, k: int) -> tuple[Any, np.ndarray | None]:
    if cfg.class_weight is None:
        return None, None
    if cfg.class_weight == "balanced":
        return "balanced", class_weight_vector(y, k, "balanced")
    if k != 2:
        raise ConfigError("class_weight: a number weights the positive class of a binary task; use 'balanced' "
                          "for multi-class")
    cw = {1: float(cfg.class_weight)}
    return cw, class_weight_vector(y, k, cw)


def fit_candidates(tr: Encoded, va: Encoded, encoder: FeatureEncoder, cfg: TabularConfig, *, n_classes: int,
                   pretrained: Path | None = None) -> dict[str, dict[str, Any]]:
    """Fit every candidate of ``cfg.models`` on ``tr``; each entry: ``model``, ``val_proba``, ``seconds``."""
    if cfg.smote:
        tr = _smote(tr, encoder, cfg.seed)
    tree_cw, ftt_w = _weights(cfg, tr.y, n_classes)
    out: dict[str, dict[str, Any]] = {}
    t0 = time.perf_counter()
    trees = TreeModel(seed=cfg.seed, class_weight=tree_cw, max_iter=cfg.tree_iterations).fit(
        tr.num, tr.codes, tr.y, n_classes=n_classes)
    out["trees"] = {"model": trees, "val_proba": trees.predict_proba(va.num, va.codes),
                    "seconds": time.perf_counter() - t0}
    want_ftt = "transformer" in cfg.models or "stack" in cfg.models
    if not want_ftt:
        return out
    from transferops.tabular.models import FTTModel, StackModel

    init, base_cfg = None, None
    if pretrained is not None:
        from safetensors.torch import load_file

        init = load_file(str(pretrained / "pretrained.safetensors"))
        base_cfg = json.loads((pretrained / "pretrained.json").read_text())["config"]
    xc, vc = encoder.scaled(tr.num), encoder.scaled(va.num)
    t0 = time.perf_counter()
    say("tabular: training the FT-Transformer" + (" from the pretrained checkpoint" if init else ""))
    ftt = FTTModel(_ftt_config(cfg, base_cfg), class_weight=ftt_w, init_state=init).fit(
        xc, tr.codes, tr.y, n_classes=n_classes, cardinalities=encoder.cardinalities,
        validation=(vc, va.codes, va.y))
    out["transformer"] = {"model": ftt, "val_proba": ftt.predict_proba(vc, va.codes),
                          "seconds": time.perf_counter() - t0}
    if "stack" not in cfg.models:
        return out
    from sklearn.model_selection import StratifiedKFold

    say(f"tabular: stacking ({cfg.folds}-fold out-of-fold predictions)")
    t0 = time.perf_counter()
    oof = [np.zeros((len(tr.y), n_classes)), np.zeros((len(tr.y), n_classes))]
    folds = StratifiedKFold(cfg.folds, shuffle=True, random_state=cfg.seed)
    for a, b in folds.split(tr.num if tr.num.shape[1] else tr.codes, tr.y):
        t = TreeModel(seed=cfg.seed, class_weight=tree_cw, max_iter=cfg.tree_iterations).fit(
            tr.num[a], tr.codes[a], tr.y[a], n_classes=n_classes)
        oof[0][b] = t.predict_proba(tr.num[b], tr.codes[b])
        f = FTTModel(_ftt_config(cfg, base_cfg), class_weight=ftt_w, init_state=init).fit(
            xc[a], tr.codes[a], tr.y[a], n_classes=n_classes, cardinalities=encoder.cardinalities,
            validation=(vc, va.codes, va.y))
        oof[1][b] = f.predict_proba(xc[b], tr.codes[b])
    stack = StackModel(seed=cfg.seed).fit(oof, tr.y, n_classes=n_classes)
    out["stack"] = {"model": stack, "val_proba": stack.predict_proba([out["trees"]["val_proba"],
                                                                      out["transformer"]["val_proba"]]),
                    "seconds": time.perf_counter() - t0 + out["trees"]["seconds"] + out["transformer"]["seconds"]}
    return out


def candidate_test_proba(name: str, fitted: dict[str, dict[str, Any]], te: Encoded, encoder: FeatureEncoder
                         ) -> np.ndarray:
    if name == "trees":
        return np.asarray(fitted["trees"]["model"].predict_proba(te.num, te.codes))
    xc = encoder.scaled(te.num)
    if name == "transformer":
        return np.asarray(fitted["transformer"]["model"].predict_proba(xc, te.codes))
    return np.asarray(fitted["stack"]["model"].predict_proba(
        [fitted["trees"]["model"].predict_proba(te.num, te.codes),
         fitted["transformer"]["model"].predict_proba(xc, te.codes)]))


def run_search(df: pd.DataFrame, y: np.ndarray, schema: TableSchema, splits: Splits, cfg: TabularConfig, *,
               n_classes: int, encoder: FeatureEncoder | None = None, pretrained: Path | None = None
               ) -> dict[str, Any]:
    """Fit the encoder (unless a pretrained one is given) and the candidates; score them on validation
    and test; pick the best on validation."""
    frame = schema.coerce(df[schema.names], where="data")
    if encoder is None:
        encoder = FeatureEncoder(schema).fit(frame.iloc[splits.train])

    def enc(ix: np.ndarray) -> Encoded:
        num, codes = encoder.transform(frame.iloc[ix])
        return Encoded(num, codes, y[ix])

    tr, va, te = enc(splits.train), enc(splits.validation), enc(splits.test)
    if len(np.unique(tr.y)) < n_classes:
        raise DataError("label_column: a class has no row in the training split; add rows or change the split")
    fitted = fit_candidates(tr, va, encoder, cfg, n_classes=n_classes, pretrained=pretrained)
    from transferops.tabular.models import val_score

    table: dict[str, dict[str, Any]] = {}
    for name, f in fitted.items():
        th = tune_threshold(f["val_proba"], va.y, cfg.threshold_target)
        f["threshold"] = th
        f["test_proba"] = candidate_test_proba(name, fitted, te, encoder)
        table[name] = {"val_score": round(val_score(f["val_proba"], va.y), 4), "threshold": th,
                       "validation": scores(f["val_proba"], va.y, th), "test": scores(f["test_proba"], te.y, th),
                       "train_seconds": round(f["seconds"], 2)}
    ranked = sorted(table, key=lambda k: (-np.nan_to_num(table[k]["val_score"], nan=-1.0), CANDIDATES.index(k)))
    return {"encoder": encoder, "fitted": fitted, "table": table, "chosen": ranked[0], "encoded": (tr, va, te)}


# ------------------------------------------------------------------------------------------ train


def train_tabular(data: str | Path | pd.DataFrame, *, out: str | Path, label_column: str = "label",
                  feature_columns: Sequence[str] | None = None, time_column: str | None = None,
                  group_column: str | None = None, id_column: str | None = None, slice_columns: Sequence[str] = (),
                  config: TabularConfig | None = None, pretrained: str | Path | None = None,
                  overwrite: bool = True) -> dict[str, Any]:
    """Train on a table and write the ``tabular`` model folder ``out``; returns its manifest."""
    import pandas as pd

    from transferops.artifacts.manifest import write_manifest

    cfg = config or TabularConfig()
    df = data.copy() if isinstance(data, pd.DataFrame) else read_rows(data)
    if label_column not in df.columns:
        raise DataError(f"label_column: {label_column!r} is not a column (columns: {', '.join(map(str, df.columns))}); "
                        "pass --label-column")
    n_missing = int(df[label_column].isna().sum())
    df = df[df[label_column].notna()].reset_index(drop=True)
    pre_dir = Path(pretrained) if pretrained else None
    encoder = None
    if pre_dir is not None:
        encoder = load_encoder(pre_dir)
        schema = TableSchema(encoder.schema.features, label_column, time_column, group_column, id_column,
                             list(slice_columns))
        missing = [c for c in schema.names if c not in df.columns]
        if missing:
            raise DataError(f"data: column {missing[0]!r} of the pretrained checkpoint {pre_dir} is missing")
        encoder = FeatureEncoder.from_dict(schema, encoder.to_dict())
    else:
        schema = infer_schema(df, label=label_column, features=feature_columns, time_column=time_column,
                              group_column=group_column, id_column=id_column, slice_columns=slice_columns)
    y, labels = encode_labels(df[label_column], cfg.positive_label)
    n_classes = len(labels)
    if len(df) < 30:
        raise DataError(f"data: {len(df)} labeled rows; tabular training needs at least 30")
    splits = make_splits(df, y, schema, cfg)
    say(f"tabular: {len(df)} rows, {len(schema.names)} features, {splits.method} split "
        f"{len(splits.train)}/{len(splits.validation)}/{len(splits.test)}")
    t0 = time.perf_counter()
    res = run_search(df, y, schema, splits, cfg, n_classes=n_classes, encoder=encoder, pretrained=pre_dir)
    encoder, fitted, chosen = res["encoder"], res["fitted"], res["chosen"]
    comparison: dict[str, Any] | None = None
    if schema.time_column and splits.method == "temporal" and cfg.compare_random_split:
        say("tabular: refitting on a random split to show its optimism")
        cmp_cfg = TabularConfig(**{**asdict(cfg), "models": ("trees",) if chosen == "trees" else
                                   ("trees", "transformer") if chosen == "transformer" else CANDIDATES})
        rnd = make_splits(df, y, schema, cfg, method="stratified")
        r2 = run_search(df, y, schema, rnd, cmp_cfg, n_classes=n_classes, pretrained=pre_dir,
                        encoder=None if pre_dir is None else encoder)
        comparison = {"model": chosen, "temporal": res["table"][chosen]["test"],
                      "random": r2["table"][chosen]["test"],
                      "note": "same model type, sizes and options; random = stratified shuffle of the same rows"}
    outp = Path(out)
    if outp.exists() and overwrite:
        shutil.rmtree(outp)
    (outp / "data").mkdir(parents=True, exist_ok=True)
    save_encoder(outp, encoder)
    fitted["trees"]["model"].save(outp / "trees.skops")
    if "transformer" in fitted:
        fitted["transformer"]["model"].save(outp)
    if "stack" in fitted:
        (outp / "stack.json").write_text(json.dumps(fitted["stack"]["model"].to_dict(), indent=1))
    keep = [c for c in df.columns]
    label_names = np.asarray(labels)[y]
    for name, ix in (("train", splits.train), ("validation", splits.validation), ("test", splits.test)):
        part = df.iloc[ix][keep].copy()
        part[label_column] = label_names[ix]
        part.to_parquet(outp / "data" / f"{name}.parquet", index=False)
    best = fitted[chosen]
    th = best["threshold"]
    from transferops.decision import DecisionRule

    rule = DecisionRule(labels=tuple(labels), threshold=th)
    ref = build_reference(df.iloc[splits.train][schema.names], schema,
                          decided=rule.decide(best["test_proba"]), labels=labels, proba=best["test_proba"])
    (outp / "reference.json").write_text(json.dumps(ref, indent=1))
    table = res["table"]
    doc: dict[str, Any] = {
        "kind": "tabular", "modality": "tabular", "task": "binary" if n_classes == 2 else "multiclass",
        "labels": labels, "model": chosen, "stack_members": ["trees", "transformer"],
        "config": {"max_length": 0, **{k: (list(v) if isinstance(v, tuple) else v) for k, v in asdict(cfg).items()}},
        "schema": schema.to_dict(), "seed": cfg.seed,
        "data": {"source": str(data) if not isinstance(data, pd.DataFrame) else "<DataFrame>", "rows": len(df),
                 "dropped_missing_label": n_missing, "class_counts": {labels[i]: int(c) for i, c in
                                                                      enumerate(np.bincount(y, minlength=n_classes))}},
        "splits": {"method": splits.method, "train": len(splits.train), "validation": len(splits.validation),
                   "test": len(splits.test), **splits.info},
        "metrics": {"validation": table[chosen]["validation"], "test": table[chosen]["test"]},
        "search": {"selected_by": "validation PR-AUC" if n_classes == 2 else "validation macro-F1",
                   "chosen": chosen, "candidates": table},
        "baseline": {"name": "trees (HistGradientBoostingClassifier)", "test": table["trees"]["test"]},
        "imbalance": {"class_weight": cfg.class_weight, "loss": cfg.loss, "smote": cfg.smote,
                      "threshold_target": cfg.threshold_target},
        "split_comparison": comparison,
        "timings": {"train_seconds": round(time.perf_counter() - t0, 2)},
    }
    if pre_dir is not None:
        doc["pretrained"] = {"path": str(pre_dir), **json.loads((pre_dir / "pretrained.json").read_text()).get(
            "summary", {})}
        if "transformer" in fitted:
            doc["pretrained"]["tensors_loaded"] = int(fitted["transformer"]["model"].pretrained_keys_)
    if th is not None:
        doc["decision_threshold"], doc["positive_index"] = th, 1
        doc["threshold_target"] = cfg.threshold_target
    if "transformer" in fitted:
        doc["training"] = {"transformer": fitted["transformer"]["model"].history_}
    return dict(write_manifest(outp, doc))


__all__ = ["CANDIDATES", "Splits", "TabularConfig", "encode_labels", "fit_candidates", "looks_tabular", "make_splits",
           "read_rows", "run_search", "scores", "train_tabular", "tune_threshold"]

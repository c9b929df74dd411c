"""Full fine-tuning on BBC: transferops vs a plain ``transformers.Trainer`` script, same checkpoint,
max length, batch size, lr, epochs. Reports training examples/s and test accuracy.

    .venv/bin/python benchmarks/finetune_vs_trainer.py [--max-length 128] [--n-train 0] [--epochs 1]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
from _common import bbc_split, save


def run_transferops(tr, te, args, tmp: Path) -> dict:
    import transferops
    from transferops.data import SplitConfig

    # train() makes its own validation/test split out of the benchmark's training rows; the benchmark's
    # test rows are never shown to it. The Trainer then gets exactly the rows ours trained on.
    csv = tmp / "bbc.csv"
    tr.to_csv(csv, index=False)
    t0 = time.perf_counter()
    res = transferops.train(csv, out=tmp / "ours", checkpoint="minilm-l6", strategy="full", epochs=args.epochs,
                            lr=args.lr, batch_size=args.batch_size, max_length=args.max_length, baseline=False,
                            check_near_duplicates=False, early_stopping_patience=None, warmup_ratio=0.06,
                            split=SplitConfig(validation_size=0.05, test_size=0.05, seed=0))
    wall = time.perf_counter() - t0
    model = transferops.load(tmp / "ours")
    acc = float(np.mean(np.asarray(model.predict(te["text"].tolist())) == te["label"].to_numpy()))
    m = res.manifest
    return {"examples_per_second": m["timings"]["examples_per_second"], "train_seconds": m["timings"]["train_seconds"],
            "train_examples": m["splits"]["train_used"], "test_accuracy": acc, "wall_seconds": wall}


def run_trainer(tr, te, args, tmp: Path) -> dict:
    """What a user writes from the transformers docs: tokenize, DataCollatorWithPadding, Trainer."""
    import pandas as pd
    import torch
    from transformers import (
        AutoModelForSequenceClassification,
        AutoTokenizer,
        DataCollatorWithPadding,
        Trainer,
        TrainingArguments,
    )

    from transferops.checkpoints import resolve_checkpoint

    path = str(resolve_checkpoint("minilm-l6").path)
    labels = sorted(tr["label"].unique())
    l2i = {lbl: i for i, lbl in enumerate(labels)}
    tok = AutoTokenizer.from_pretrained(path)
    model = AutoModelForSequenceClassification.from_pretrained(path, num_labels=len(labels))

    class DS(torch.utils.data.Dataset):
        def __init__(self, df):
            self.enc = tok(df["text"].tolist(), truncation=True, max_length=args.max_length)
            self.y = [l2i[v] for v in df["label"]]

        def __len__(self):
            return len(self.y)

        def __getitem__(self, i):
            return {**{k: v[i] for k, v in self.enc.items()}, "labels": self.y[i]}

    train_rows = pd.read_parquet(tmp / "ours" / "data" / "train.parquet")
    n_train = len(train_rows)
    train_ds = DS(train_rows)
    targs = TrainingArguments(output_dir=str(tmp / "hf"), per_device_train_batch_size=args.batch_size,
                              learning_rate=args.lr, num_train_epochs=args.epochs,
                              warmup_steps=int(0.06 * args.epochs * -(-n_train // args.batch_size)),
                              weight_decay=0.01, save_strategy="no", eval_strategy="no", report_to=[],
                              logging_strategy="no", use_cpu=True, seed=0, disable_tqdm=True)
    trainer = Trainer(model=model, args=targs, train_dataset=train_ds, data_collator=DataCollatorWithPadding(tok))
    t0 = time.perf_counter()
    out = trainer.train()
    secs = time.perf_counter() - t0
    pred = trainer.predict(DS(te)).predictions.argmax(1)
    acc = float(np.mean(pred == np.asarray([l2i[v] for v in te["label"]])))
    return {"examples_per_second": out.metrics["train_samples_per_second"], "train_seconds": secs,
            "train_examples": n_train, "test_accuracy": acc}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--max-length", type=int, default=128)
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--lr", type=float, default=5e-5)
    ap.add_argument("--epochs", type=int, default=1)
    ap.add_argument("--n-train", type=int, default=0, help="subsample the training split (0 = all)")
    ap.add_argument("--name", default="finetune_vs_trainer")
    args = ap.parse_args()
    tr, te = bbc_split()
    if args.n_train:
        tr = tr.groupby("label").sample(n=args.n_train // 5, random_state=0).reset_index(drop=True)
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        ours = run_transferops(tr, te, args, tmp)
        hf = run_trainer(tr, te, args, tmp)
    ratio = ours["examples_per_second"] / hf["examples_per_second"]
    md = (f"| full fine-tune, MiniLM-L6, BBC, max_len {args.max_length}, batch {args.batch_size}, lr {args.lr}, "
          f"{args.epochs} epoch(s) | examples/s | test accuracy | train s |\n|---|---|---|---|\n"
          f"| plain transformers.Trainer | {hf['examples_per_second']:.2f} | {hf['test_accuracy']:.4f} | "
          f"{hf['train_seconds']:.0f} |\n"
          f"| transferops (bucketed, dynamic padding) | {ours['examples_per_second']:.2f} | "
          f"{ours['test_accuracy']:.4f} | {ours['train_seconds']:.0f} |\n"
          f"| ratio | {ratio:.2f}x | {ours['test_accuracy'] - hf['test_accuracy']:+.4f} | |\n")
    save(args.name, {"args": vars(args), "trainer": hf, "transferops": ours, "throughput_ratio": ratio}, md)


if __name__ == "__main__":
    main()

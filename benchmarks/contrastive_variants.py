"""Strategy contrastive alone (no search), variants on one few-shot cell: what chose the defaults of
transferops.finetune.contrastive (docs/contrastive.md). Trains on all 8/class examples and scores the same
300 test rows as fewshot_vs_setfit.py. A variant is ``loss:pairs_per_example[:lr=..][:steps=..][:emb=1]``:

    nice -n 10 .venv/bin/python benchmarks/contrastive_variants.py headlines 0 cosine_mse:100 supcon:100

Prints one JSON line per variant (the committed benchmarks/results/contrastive_variants.* collect them).
"""

from __future__ import annotations

import json
import sys
import time

import numpy as np
from fewshot_vs_setfit import load_dataset, macro_f1, sample


def main() -> None:
    from transferops.checkpoints import resolve_checkpoint
    from transferops.finetune.config import TrainConfig
    from transferops.finetune.contrastive import ContrastiveTuner

    ds, seed, variants = sys.argv[1], int(sys.argv[2]), sys.argv[3:]
    tr, te = load_dataset(ds)
    te = te.groupby("label", group_keys=False).sample(frac=300 / len(te), random_state=0).reset_index(drop=True)
    few = sample(tr, 8, seed)
    labels = sorted(few.label.unique())
    y = np.array([labels.index(v) for v in few.label])
    yte = np.array([labels.index(v) for v in te.label])
    ck = resolve_checkpoint("minilm-l6").path
    for v in variants:
        loss, ppe, *rest = v.split(":")
        kw = dict(x.split("=") for x in rest)
        cfg = TrainConfig(strategy="contrastive", seed=seed, max_length=int(kw.get("ml", 128)),
                          precision=kw.get("prec", "auto"), batch_size=int(kw.get("bs", 16)),
                          lr=float(kw["lr"]) if "lr" in kw else None)
        t0 = time.perf_counter()
        t = ContrastiveTuner(cfg, loss=loss, pairs_per_example=int(ppe), train_word_embeddings=kw.get("emb") == "1",
                             steps=int(kw["steps"]) if "steps" in kw else None)
        t.fit(few.text.tolist(), y, [], np.array([]), labels=labels, task="multiclass", checkpoint_path=ck)
        s = time.perf_counter() - t0
        pred = t.predict_logits(te.text.tolist()).argmax(1)
        info = {k: t.contrastive_[k] for k in ("steps", "pairs", "precision", "final_train_loss", "body_seconds")}
        print(json.dumps({"ds": ds, "seed": seed, "v": v, "f1": round(macro_f1(yte, pred), 4), "s": round(s, 1),
                          **info}), flush=True)


if __name__ == "__main__":
    main()

"""The image side of the usual commands (issue 15): ``train``, ``predict``, ``export``, ``monitor`` and
``evaluate`` dispatch here when the data is an image folder (or ``--modality image``) or the model folder is
an image model; the handlers of those commands call :func:`wants_images` / :func:`is_image_model` first.

``evaluate`` itself needs no dispatch (the evaluate API runs any kind); this module adds the worst-image
grid next to the report (``--report``)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from transferops._util import dumps


def add_train_args(p: argparse.ArgumentParser) -> None:
    """``train`` options of images (text runs ignore them)."""
    g = p.add_argument_group("images (issue 15; --modality image, or inferred from a class-per-folder --data)")
    # --modality (text | tabular | image | auto) is the one flag of tabular.cli.add_modality_arg
    g.add_argument("--image-column", default="path", help="column of image paths in a CSV/Parquet --data")
    g.add_argument("--image-size", type=int, help="crop side in pixels (default: the checkpoint's, e.g. 224)")
    g.add_argument("--image-augment", choices=["standard", "geometry_preserving"],
                   help="kornia augmentation preset for freeze/full (train split only)")


def wants_images(args: argparse.Namespace) -> bool:
    modality = getattr(args, "modality", None)
    if modality not in (None, "auto"):
        return bool(modality == "image")
    from transferops.vision.data import is_image_folder

    return is_image_folder(args.data)


def is_image_model(path: str | Path) -> bool:
    from transferops.artifacts.manifest import read_manifest

    p = Path(path)
    if not (p / "transferops.json").exists():
        return False
    try:
        return read_manifest(p).get("modality") == "image"
    except Exception:
        return False


def train(args: argparse.Namespace) -> int:
    from transferops.vision.train import ImageTrainConfig, train_images

    kw: dict[str, Any] = {"checkpoint": args.checkpoint or "mobilenet-v2",
                          "strategy": args.strategy or "auto", "image_size": args.image_size,
                          "epochs": args.epochs, "lr": args.lr, "class_weight": args.class_weight,
                          "oversample": bool(args.oversample), "augment": args.image_augment,
                          "seed": args.seed if args.seed is not None else 0, "calibrate": bool(args.calibrate),
                          "threads": args.threads}
    if args.batch_size:
        kw["batch_size"] = args.batch_size
    if args.freeze_fraction is not None:
        kw["freeze_fraction"] = args.freeze_fraction
    res = train_images(args.data, out=args.out, config=ImageTrainConfig(**kw), path_column=args.image_column,
                       label_column=args.label_column, slice_columns=args.slice_column or None,
                       time_column=args.time_column, group_column=args.group_column,
                       skip_bad_rows=args.skip_bad_rows)
    print(dumps(res.manifest) if args.json else res.summary())
    return 0


def predict(args: argparse.Namespace) -> int:
    """``predict --model runs/img --input folder/ --output preds.csv``: every image file under the folder."""
    import pandas as pd

    from transferops._progress import say
    from transferops.artifacts import load
    from transferops.vision.data import list_images

    inp = Path(args.input)
    if inp.is_dir():
        files = [str(f) for f in list_images(inp)]
    else:
        from transferops.data.loading import read_table

        files = [str(x) for x in read_table(inp)[args.text_column if args.text_column != "text" else "path"]]
    model = load(args.model, **({"threads": args.threads} if args.threads else {}))
    rows = []
    for s in range(0, len(files), args.batch_size):
        batch = files[s:s + args.batch_size]
        proba = model.predict_proba(batch)
        labels = model.decide(proba)
        for f, lbl, p in zip(batch, labels, proba, strict=True):
            rows.append({"path": f, "label": lbl, "confidence": float(p.max()),
                         **{f"p_{c}": float(v) for c, v in zip(model.labels, p, strict=True)}})
    out = Path(args.output)
    out.parent.mkdir(parents=True, exist_ok=True)
    df = pd.DataFrame(rows)
    df.to_parquet(out, index=False) if out.suffix == ".parquet" else df.to_csv(out, index=False)
    say(f"scored {len(df)} images → {out}")
    return 0


def export(args: argparse.Namespace) -> int:
    from transferops.vision.onnx import export_image

    rep = export_image(args.model, args.out, int8=args.quantize != "none", max_drop=args.max_drop / 100.0)
    fp = rep["fp32"]["test"]
    print(f"exported {args.model} → {args.out}: fp32 parity max |Δlogit| {rep['parity']['max_abs_logit_diff']:.2e}, "
          f"argmax agreement {rep['parity']['argmax_agreement']:.3f}; fp32 test accuracy {fp['accuracy']:.4f} "
          f"({fp['ms_per_image']:.2f} ms/image)")
    if "int8" in rep:
        q = rep["int8"]
        print(f"  int8 (static QDQ, {q['calibration_images']} calibration images): test accuracy "
              f"{q['test']['accuracy']:.4f} (drop {q['accuracy_drop']:+.4f}), "
              f"{q['test']['ms_per_image']:.2f} ms/image, "
              f"{q['bytes'] / 1e6:.1f} MB vs {rep['fp32']['bytes'] / 1e6:.1f} MB")
    return 0


def monitor(args: argparse.Namespace) -> int:
    """``monitor --model runs/img --images new/``: input drift (size, brightness, contrast, colour) + embedding
    drift against the reference profile; exit 4 on drift, 0 otherwise."""
    from transferops.vision.data import list_images
    from transferops.vision.profile import format_drift, image_drift

    rep = image_drift(args.model, [str(f) for f in list_images(args.images)])
    print(dumps(rep) if args.json else format_drift(rep))
    return 4 if rep["drift"] else 0


def worst_grid(model_path: str | Path, out: str | Path, *, k: int = 16, split: str = "test") -> Path:
    """A PNG grid of the ``k`` test images with the lowest probability on their true class (title: true →
    predicted, p)."""
    import numpy as np
    from matplotlib.figure import Figure

    from transferops._extras import require
    from transferops.artifacts import load

    require("matplotlib", "plot")
    model = load(model_path)
    df = model.split(split)
    proba = model.predict_proba(df["text"].tolist())
    y = np.asarray([model.labels.index(v) for v in df["label"]])
    p_true = proba[np.arange(len(y)), y]
    order = np.argsort(p_true)[:k]
    from PIL import Image

    n = len(order)
    cols = min(4, max(n, 1))
    rows = max(1, -(-n // cols))
    fig = Figure(figsize=(2.4 * cols, 2.6 * rows))
    axes = fig.subplots(rows, cols, squeeze=False)
    for ax in axes.ravel():
        ax.axis("off")
    for ax, i in zip(axes.ravel(), order, strict=False):
        ax.imshow(Image.open(df["text"].iloc[i]).convert("RGB"))
        ax.set_title(f"{df['label'].iloc[i]} → {model.labels[int(proba[i].argmax())]}\np(true)={p_true[i]:.2f}",
                     fontsize=8)
    fig.tight_layout()
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=80)
    return out


__all__ = ["add_train_args", "export", "is_image_model", "monitor", "predict", "train", "wants_images", "worst_grid"]

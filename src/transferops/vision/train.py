"""``transferops train --data images/``: an image classifier from a folder, compared with the pixel baseline.

Order: decode every image once (:mod:`.data`) → stratified (or temporal / group) splits, test split
write-once → leakage (file hash + perceptual hash) → preprocessing from the checkpoint's config (size,
mean/std; ``image_size`` may lower the resolution) → the pixel baseline (always) → each candidate
strategy through :class:`~transferops.finetune.loop.TrainLoop` → the winner on validation macro-F1 is saved
(possibly the baseline itself) → test metrics, the image reference profile for drift, optional
calibration.

Strategies (``strategy``):

* ``head`` — features of the frozen backbone cached once (BatchNorm in eval mode), only the head trains;
* ``freeze`` — the first ``freeze_fraction`` of the backbone's blocks frozen (their BatchNorm too),
  the rest + the head train on pixels;
* ``full`` — everything trains; BatchNorm momentum is PyTorch's 0.1;
* ``lora`` — PEFT LoRA (r 8) on every 1×1 convolution and linear layer of the backbone (depthwise
  convolutions are left out: LoRA on grouped convolutions is not supported), the head trains fully, frozen
  BatchNorm statistics; merged into the weights before saving, so the folder is a plain image model;
* ``auto`` (default) — a search over ``head`` and ``freeze``, plus the baseline; ``baseline`` alone is
  allowed too.

Learning-rate defaults are the vision range of the source text (10⁻⁴–10⁻³): head 1e-3, freeze 5e-4,
full 1e-4.
"""

from __future__ import annotations

import os
import stat
import time
from dataclasses import asdict, dataclass, field
from numbers import Integral, Real
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from transferops._progress import say
from transferops._validation import Constraints, Interval, Options, validate_params
from transferops.constants import DATA_DIR, MANIFEST_NAME, MODEL_DIR, TEST_SPLIT, TRAIN_SPLIT, VALIDATION_SPLIT
from transferops.errors import ConfigError

#: name → (lr, epochs)
STRATEGY_DEFAULTS: dict[str, tuple[float, int]] = {"head": (1e-3, 40), "freeze": (5e-4, 4), "full": (1e-4, 4),
                                                   "lora": (1e-3, 4)}
STRATEGIES = ("auto", "head", "freeze", "full", "lora", "baseline")
#: LoRA rank / alpha for image models (PEFT on the 1×1 convolutions and linear layers).
LORA_R, LORA_ALPHA = 8, 16
AUTO_CANDIDATES = ("head", "freeze")


@dataclass
class ImageTrainConfig:
    """How an image model trains (validated on construction; errors name the field)."""

    checkpoint: str = "mobilenet-v2"
    strategy: str = "auto"
    image_size: int | None = None
    epochs: int | None = None
    lr: float | None = None
    batch_size: int = 32
    class_weight: str | None = None
    oversample: bool = False
    freeze_fraction: float = 0.75
    augment: str | None = None
    seed: int = 0
    calibrate: bool = False
    threads: int | None = None
    baseline_side: int = 16
    near_duplicate_bits: int = 4
    candidates: tuple[str, ...] = field(default=AUTO_CANDIDATES)

    _parameter_constraints: ClassVar[Constraints] = {
        "strategy": Options(*STRATEGIES),
        "image_size": [None, Interval(Integral, 16, 1024)],
        "epochs": [None, Interval(Integral, 1, 1000)],
        "lr": [None, Interval(Real, 0.0, 1.0, closed="right")],
        "batch_size": Interval(Integral, 1, 4096),
        "class_weight": [None, Options("balanced")],
        "freeze_fraction": Interval(Real, 0.0, 1.0),
        "augment": [None, Options("standard", "geometry_preserving")],
        "baseline_side": Interval(Integral, 4, 64),
        "near_duplicate_bits": Interval(Integral, 0, 32),
    }

    def __post_init__(self) -> None:
        validate_params(self, self._parameter_constraints,
                        hints={"image_size": "the crop side in pixels, e.g. 96 on a CPU, 224 for the checkpoint's own"})
        bad = [c for c in self.candidates if c not in STRATEGY_DEFAULTS]
        if bad:
            raise ConfigError(f"candidates: {bad} are not image strategies ({', '.join(STRATEGY_DEFAULTS)})")

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["candidates"] = list(self.candidates)
        return d


# --------------------------------------------------------------------------- training pieces


class _Cached:
    """Data source over cached features (head) or cropped pixels (freeze/full), seeded per epoch."""

    def __init__(self, x: Any, y: np.ndarray, batch_size: int, seed: int, *, oversample: bool,
                 transform: Any = None, to_pixels: Any = None) -> None:
        self.x, self.y, self.bs, self.seed = x, y, batch_size, seed
        self.oversample, self.transform, self.to_pixels = oversample, transform, to_pixels

    def _order(self, epoch: int) -> np.ndarray:
        rng = np.random.default_rng([self.seed, epoch])
        if self.oversample:
            classes, counts = np.unique(self.y, return_counts=True)
            idx = np.concatenate([rng.choice(np.flatnonzero(self.y == c), counts.max(), replace=True)
                                  for c in classes])
            return rng.permutation(idx)
        return rng.permutation(len(self.y))

    def __len__(self) -> int:
        n = len(self.y)
        if self.oversample:
            _, counts = np.unique(self.y, return_counts=True)
            n = int(counts.max()) * len(counts)
        return (n + self.bs - 1) // self.bs

    def batches(self, epoch: int, start: int = 0) -> Any:
        import torch

        order = self._order(epoch)
        for k in range(start, len(self)):
            idx = order[k * self.bs:(k + 1) * self.bs]
            tgt = torch.as_tensor(self.y[idx], dtype=torch.long)
            if self.to_pixels is None:
                yield torch.as_tensor(self.x[idx]), tgt
            else:
                crops = self.x[idx]
                if self.transform is not None:
                    crops = self.transform(crops, seed=(self.seed, epoch, k))
                yield {"pixel_values": torch.from_numpy(self.to_pixels(crops)), "labels": tgt}


def _loss_fn(y: np.ndarray, n_classes: int, class_weight: str | None) -> Any:
    import torch

    if class_weight == "balanced":
        counts = np.bincount(y, minlength=n_classes).astype(np.float64)
        w = np.where(counts > 0, len(y) / (n_classes * np.maximum(counts, 1)), 0.0)
        return torch.nn.CrossEntropyLoss(weight=torch.tensor(w, dtype=torch.float32))
    return torch.nn.CrossEntropyLoss()


def backbone_blocks(model: Any) -> list[Any]:
    """The backbone's sequence of blocks: the longest ``ModuleList`` inside the model (MobileNetV2's
    ``layer``, ViT's ``encoder.layer``, ConvNeXt's stages ...)."""
    import torch

    lists = [m for m in model.modules() if isinstance(m, torch.nn.ModuleList)]
    if not lists:
        return []
    return list(max(lists, key=lambda m: len(list(m))))


def _freeze_bn_stats(module: Any) -> None:
    """BatchNorm layers of a frozen part keep their running statistics (eval behaviour in training)."""
    import torch

    for m in module.modules():
        if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
            m.register_forward_pre_hook(lambda mod, _a: setattr(mod, "training", False))


def apply_freeze(model: Any, fraction: float) -> int:
    """Freeze the stem and the first ``fraction`` of the blocks; returns the number of frozen blocks."""
    from transferops.vision.model import head_module

    blocks = backbone_blocks(model)
    n_frozen = int(round(fraction * len(blocks)))
    trainable_blocks = {id(b) for b in blocks[n_frozen:]}
    head = head_module(model)
    for p in model.parameters():
        p.requires_grad_(False)
    frozen_ids: set[int] = set()
    for b in blocks[n_frozen:]:
        for p in b.parameters():
            p.requires_grad_(True)
    # what comes after the blocks (MobileNetV2's conv_1x1, ViT's final layernorm) trains with them
    seen_blocks = False
    base = getattr(model, model.base_model_prefix, model)
    for _name, child in base.named_children():
        if any(id(m) in trainable_blocks for m in child.modules()):
            seen_blocks = True
            continue
        if seen_blocks:
            child.requires_grad_(True)
        else:
            frozen_ids.add(id(child))
    for p in head.parameters():
        p.requires_grad_(True)
    for b in blocks[:n_frozen]:
        _freeze_bn_stats(b)
    for _name, child in base.named_children():
        if id(child) in frozen_ids:
            _freeze_bn_stats(child)
    return n_frozen


def apply_lora(model: Any) -> Any:
    """PEFT LoRA on the 1×1 convolutions and linear layers (not the head, which trains fully)."""
    import peft
    import torch

    targets = [n for n, m in model.named_modules() if not n.startswith("classifier") and (
        (isinstance(m, torch.nn.Conv2d) and m.groups == 1 and m.kernel_size == (1, 1))
        or isinstance(m, torch.nn.Linear))]
    if not targets:
        raise ConfigError("strategy: lora found no 1×1 convolution or linear layer in this checkpoint; use freeze")
    _freeze_bn_stats(model)
    pm = peft.get_peft_model(model, peft.LoraConfig(r=LORA_R, lora_alpha=LORA_ALPHA, lora_dropout=0.0,
                                                    target_modules=targets, modules_to_save=["classifier"]))
    say(f"lora: r={LORA_R} on {len(targets)} layers; {sum(p.numel() for p in pm.parameters() if p.requires_grad):,} "
        "trainable parameters")
    return pm


@dataclass
class Candidate:
    name: str
    validation: dict[str, float]
    seconds: float
    fitted: Any = None
    history: list[dict[str, Any]] = field(default_factory=list)
    lr: float | None = None
    epochs: int | None = None


def _metrics(y: np.ndarray, logits: np.ndarray) -> dict[str, float]:
    from transferops.metrics import classification_metrics
    from transferops.modeling import softmax

    return {k: float(v) for k, v in classification_metrics(y, softmax(logits)).items()}


def _train_strategy(name: str, ckpt_path: Path, labels: list[str], crops: dict[str, np.ndarray],
                    ys: dict[str, np.ndarray], pre: Any, cfg: ImageTrainConfig) -> Candidate:
    import torch

    from transferops.finetune.loop import LoopConfig, TrainLoop
    from transferops.finetune.trainer import ClassificationLoss
    from transferops.vision.augment import make_augmenter
    from transferops.vision.model import WithFeatures, head_module, load_image_classifier

    torch.manual_seed(cfg.seed)
    lr0, ep0 = STRATEGY_DEFAULTS[name]
    lr, epochs = cfg.lr or lr0, cfg.epochs or ep0
    if name == "head" and cfg.epochs:
        epochs = max(cfg.epochs, 10)  # a linear head over cached features needs more passes than a network
    model = load_image_classifier(ckpt_path, labels)
    wrapped = WithFeatures.wrap(model)
    to_pix = pre.normalise
    y_tr = ys["train"]

    def feats(split: str) -> np.ndarray:
        out = []
        model.eval()
        with torch.inference_mode():
            for s in range(0, len(crops[split]), 64):
                out.append(wrapped(torch.from_numpy(to_pix(crops[split][s:s + 64])))[1].numpy())
        return np.concatenate(out) if out else np.zeros((0, 0), np.float32)

    t0 = time.perf_counter()
    loss = ClassificationLoss(_loss_fn(y_tr, len(labels), cfg.class_weight), cached=(name == "head"))
    loop = TrainLoop(LoopConfig(lr=lr, epochs=epochs, metric="macro_f1", patience=None, select_best=True,
                                save_epochs=False, desc=f"{name} epoch"))
    if name == "head":
        f_tr, f_va = feats("train"), feats("validation")
        head = head_module(model)
        for p in model.parameters():
            p.requires_grad_(False)
        for p in head.parameters():
            p.requires_grad_(True)

        def evaluate(_m: Any) -> dict[str, float]:
            with torch.inference_mode():
                return _metrics(ys["validation"], head(torch.from_numpy(f_va)).numpy())

        res = loop.run(model, loss, _Cached(f_tr, y_tr, cfg.batch_size, cfg.seed, oversample=cfg.oversample),
                       evaluate=evaluate, train_module=head)
    else:
        if name == "freeze":
            n = apply_freeze(model, cfg.freeze_fraction)
            say(f"freeze: the stem and {n} of {len(backbone_blocks(model))} blocks frozen")
        elif name == "lora":
            model = apply_lora(model)
        else:
            for p in model.parameters():
                p.requires_grad_(True)

        def evaluate(_m: Any) -> dict[str, float]:
            lg = []
            model.eval()
            with torch.inference_mode():
                for s in range(0, len(crops["validation"]), 64):
                    pv = torch.from_numpy(to_pix(crops["validation"][s:s + 64]))
                    lg.append(model(pixel_values=pv).logits.numpy())
            model.train()
            return _metrics(ys["validation"], np.concatenate(lg))

        src = _Cached(crops["train"], y_tr, cfg.batch_size, cfg.seed, oversample=cfg.oversample,
                      transform=make_augmenter(cfg.augment), to_pixels=to_pix)
        res = loop.run(model, loss, src, evaluate=evaluate)
    if name == "lora":
        model = model.merge_and_unload()  # a plain HF image model again: export and serve need nothing new
        wrapped = WithFeatures.wrap(model)
    model.eval()
    seconds = time.perf_counter() - t0
    val = _metrics(ys["validation"], _logits(wrapped, crops["validation"], to_pix))
    say(f"{name}: validation macro-F1 {val['macro_f1']:.4f} accuracy {val['accuracy']:.4f} ({seconds:.1f}s)")
    return Candidate(name, val, seconds, model, res.history, lr, epochs)


def _logits(wrapped: Any, crops: np.ndarray, to_pix: Any) -> np.ndarray:
    import torch

    out = []
    wrapped.eval()
    with torch.inference_mode():
        for s in range(0, len(crops), 64):
            out.append(wrapped(torch.from_numpy(to_pix(crops[s:s + 64])))[0].numpy())
    return np.concatenate(out)


# --------------------------------------------------------------------------- the entry point


@dataclass
class ImageTrainResult:
    path: Path
    manifest: dict[str, Any]
    warnings: list[str]

    def summary(self) -> str:
        m = self.manifest
        t = m["metrics"]["test"]
        lines = [f"image model saved to {self.path}",
                 f"  winner {m['strategy']['name']} (kind {m['kind']}) · base {m['base']['name']} · "
                 f"{len(m['labels'])} labels · splits {m['splits']['sizes']} · "
                 f"{m['image']['preprocessing']['crop']} px",
                 f"  test: accuracy {t['accuracy']:.4f}  macro-F1 {t['macro_f1']:.4f}",
                 "  search (validation macro-F1): " + ", ".join(
                     f"{c['name']} {c['value']:.4f} ({c['train_seconds']:.0f}s)" for c in m["search"]["leaderboard"])]
        b = m["baseline"]["pixel_logreg"]["test"]
        lines.append(f"  pixel baseline test: accuracy {b['accuracy']:.4f}  macro-F1 {b['macro_f1']:.4f}")
        lk = m.get("leakage", {})
        lines.append(f"  leakage train↔test: {lk.get('exact_duplicates', 0)} exact (file hash), "
                     f"{lk.get('near_duplicates', 0)} near-duplicate (perceptual hash)")
        lines += [f"  warning: {w}" for w in self.warnings]
        return "\n".join(lines)


def train_images(data: Any, *, out: str | Path, config: ImageTrainConfig | None = None,
                 path_column: str = "path", label_column: str = "label", slice_columns: list[str] | None = None,
                 time_column: str | None = None, group_column: str | None = None, skip_bad_rows: bool = False,
                 split: Any = None, name: str | None = None) -> ImageTrainResult:
    """Train an image classifier from ``data`` (a class-per-folder tree, or a CSV/Parquet with a path column)."""
    import torch

    from transferops._util import package_versions, sha256_file
    from transferops.artifacts.manifest import write_manifest
    from transferops.checkpoints.image import resolve_image_checkpoint
    from transferops.data import SplitConfig, make_splits
    from transferops.modality.image import IMAGE
    from transferops.modality.image.preprocess import ImagePreprocessing
    from transferops.modeling import set_threads
    from transferops.vision.data import load_images
    from transferops.vision.leakage import find_image_leakage
    from transferops.vision.profile import build_image_profile

    cfg = config or ImageTrainConfig()
    set_threads(cfg.threads)
    out = Path(out)
    if (out / MANIFEST_NAME).exists():
        raise ConfigError(f"out: {out} already holds a trained model; choose another --out, or delete it")
    ckpt = resolve_image_checkpoint(cfg.checkpoint)
    pre = ImagePreprocessing.from_folder(ckpt.path).at_size(cfg.image_size)
    out.mkdir(parents=True, exist_ok=True)
    t_start = time.perf_counter()
    dec = load_images(data, path_column=path_column, label_column=label_column, slice_columns=slice_columns,
                      time_column=time_column, group_column=group_column, skip_bad_rows=skip_bad_rows,
                      rejects_path=out / "rejects.csv")
    if dec.data.n_rejected:
        say(f"skipped {dec.data.n_rejected} bad images; see {dec.data.rejects_path}")
    labeled, labels = dec.data, dec.data.labels
    by_path = dict(zip(labeled.texts, dec.images, strict=True))
    split_cfg = split or SplitConfig(method="temporal" if time_column else "group" if group_column else "stratified",
                                     seed=cfg.seed)
    splits = make_splits(labeled, split_cfg)
    parts = {"train": splits.train, "validation": splits.validation, "test": splits.test}
    d = out / DATA_DIR
    d.mkdir(parents=True, exist_ok=True)
    for nm, fname in (("train", TRAIN_SPLIT), ("validation", VALIDATION_SPLIT), ("test", TEST_SPLIT)):
        parts[nm].frame.to_parquet(d / fname, index=False)
    os.chmod(d / TEST_SPLIT, stat.S_IRUSR | stat.S_IRGRP | stat.S_IROTH)
    images = {k: [by_path[p] for p in v.texts] for k, v in parts.items()}
    ys = {k: np.asarray([labels.index(y) for y in v.y]) for k, v in parts.items()}
    warnings_: list[str] = []
    if len(np.unique(ys["validation"])) < len(labels):
        warnings_.append("the validation split misses some classes: the winner is chosen on fewer classes")

    leak = find_image_leakage(parts["train"].texts, parts["test"].texts, images["train"], images["test"],
                              max_bits=cfg.near_duplicate_bits)
    if leak["exact_duplicates"] or leak["near_duplicates"]:
        warnings_.append(f"leakage: {leak['exact_duplicates']} exact and {leak['near_duplicates']} near-duplicate "
                         "train↔test pairs (see manifest 'leakage'); remove them from the data")

    say(f"fitting the pixel + colour-histogram logistic-regression baseline ({len(images['train'])} images) ...")
    t0 = time.perf_counter()
    base_model = IMAGE.baseline(seed=cfg.seed, side=cfg.baseline_side).fit(images["train"], ys["train"],
                                                                           n_classes=len(labels))
    cands = [Candidate("baseline", _metrics(ys["validation"], base_model.logits(images["validation"])),
                       time.perf_counter() - t0, base_model)]
    say(f"baseline: validation macro-F1 {cands[0].validation['macro_f1']:.4f}")
    todo = {"auto": cfg.candidates, "baseline": ()}.get(cfg.strategy, (cfg.strategy,))
    if todo:
        say(f"preprocessing from {ckpt.name}: resize {pre.resize}, crop {pre.crop}, mean {pre.mean}, std {pre.std}")
        crops = {k: np.stack([np.asarray(pre.crop_image(im)) for im in v]) if v else
                 np.zeros((0, pre.crop, pre.crop, 3), np.uint8) for k, v in images.items()}
        for s in todo:
            cands.append(_train_strategy(s, ckpt.path, labels, crops, ys, pre, cfg))
    # auto: the model search (baseline included); an explicit strategy is what the user asked for (the
    # baseline is still reported beside it, as for text).
    pool = cands if cfg.strategy in ("auto", "baseline") else cands[1:]
    best = max(pool, key=lambda c: (round(c.validation["macro_f1"], 6), c.name == "baseline"))
    beats = cands[0].validation["macro_f1"] > best.validation["macro_f1"]
    if cfg.strategy not in ("auto", "baseline") and beats:
        warnings_.append(f"the pixel baseline beats {best.name} on validation "
                         f"({cands[0].validation['macro_f1']:.4f} vs {best.validation['macro_f1']:.4f})")
    if best.name == "baseline" and len(cands) > 1:
        warnings_.append("the pixel baseline beat every transfer strategy on validation: the baseline is saved")
    say(f"winner on validation: {best.name} (macro-F1 {best.validation['macro_f1']:.4f})")

    if best.name == "baseline":
        from safetensors.numpy import save_file

        save_file({k: np.ascontiguousarray(v, dtype=np.float32) for k, v in base_model.arrays().items()},
                  str(out / "baseline.safetensors"))
        kind = "image_baseline"
        test_logits = base_model.logits(images["test"])
        val_logits = base_model.logits(images["validation"])
    else:
        from transferops.vision.model import WithFeatures

        kind = "image_model"
        best.fitted.save_pretrained(str(out / MODEL_DIR))
        pre.save(out / MODEL_DIR)
        wrapped = WithFeatures.wrap(best.fitted)
        test_logits = _logits(wrapped, crops["test"], pre.normalise)
        val_logits = _logits(wrapped, crops["validation"], pre.normalise)
    base_test = _metrics(ys["test"], base_model.logits(images["test"]))
    test_m = _metrics(ys["test"], test_logits)
    doc: dict[str, Any] = {
        "kind": kind, "modality": "image", "name": name or out.name, "task": labeled.task, "labels": labels,
        "base": {"name": ckpt.name, "path": str(ckpt.path), "source": ckpt.source},
        "strategy": {"name": best.name, "reason": ("best validation macro-F1 among " + ", ".join(c.name for c in pool))
                     if cfg.strategy == "auto" else "set by the user"},
        "config": {"max_length": pre.crop, **cfg.to_dict()},
        "image": {"preprocessing": pre.to_dict(), "baseline_side": cfg.baseline_side,
                  "checkpoint_preprocessing": ImagePreprocessing.from_folder(ckpt.path).to_dict()},
        "data": {"source": labeled.source, "rows": len(labeled), "rejected": labeled.n_rejected},
        "splits": {"method": split_cfg.method, "seed": split_cfg.seed,
                   "sizes": {k: len(v) for k, v in parts.items()}},
        "test_sha256": sha256_file(d / TEST_SPLIT),
        "leakage": leak,
        "metrics": {"validation": _metrics(ys["validation"], val_logits), "test": test_m},
        "baseline": {"pixel_logreg": {"test": base_test, "validation": cands[0].validation, "C": base_model.C_}},
        # the text model search's format (evaluate's report reads it): candidates scored on validation only
        "search": {"winner": best.name, "reason": f"{best.name}: best validation macro-F1", "metric": "macro_f1",
                   "seconds": round(sum(c.seconds for c in cands), 1), "budget_seconds": None,
                   "leaderboard": [{"name": c.name, "status": "ok", "metric": "macro_f1",
                                    "value": c.validation["macro_f1"], "ci": None, "train_seconds": round(c.seconds, 2),
                                    "validation": c.validation, "params": {"lr": c.lr, "epochs": c.epochs}}
                                   for c in cands]},
        "history": best.history,
        "timings": {"train_seconds": round(time.perf_counter() - t_start, 2)},
        "warnings": warnings_,
        "versions": package_versions(),
        "seed": cfg.seed,
    }
    if kind == "image_model":
        doc["image"]["bn_momentum"] = 0.1
    write_manifest(out, doc)
    say("building the image reference profile (input statistics + embeddings of the validation split) ...")
    build_image_profile(out, images["validation"])
    if cfg.calibrate:
        from transferops.evaluate.calibration import calibrate_artifact

        res = calibrate_artifact(out)
        say(f"calibrated: temperature {res.temperature:.3f}, validation ECE {res.ece_before:.3f} → "
            f"{res.ece_after:.3f}")
    del torch
    from transferops.artifacts.manifest import read_manifest

    return ImageTrainResult(out, dict(read_manifest(out)), warnings_)


__all__ = ["AUTO_CANDIDATES", "STRATEGIES", "STRATEGY_DEFAULTS", "ImageTrainConfig", "ImageTrainResult",
           "apply_freeze", "backbone_blocks", "train_images"]

"""SimCLR-style contrastive continued pretraining on unlabeled images (Chen et al. 2020):
``transferops adapt --modality image --unlabeled DIR --out ckpt/``.

Two kornia views of every image (the ``standard`` augmentation: crop, flip, colour jitter) → the backbone's
features (what enters the classifier head) → a 2-layer projection head → NT-Xent loss (temperature 0.5)
over the batch, through the shared :class:`~transferops.finetune.loop.TrainLoop`. The backbone is saved as
an HF image folder (config + safetensors + preprocessor config; the projection head is dropped), usable as
``--checkpoint`` anywhere; ``adapt.json`` records the lineage.

With ``probe_data`` (a labeled folder) the gain is measured honestly: the cross-validated logistic-probe
macro-F1 on frozen features of the same images, before and after; on small runs it may be zero or negative,
and it is reported as measured.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from numbers import Integral, Real
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from transferops._progress import say
from transferops._validation import Constraints, Interval, validate_params


@dataclass
class SimCLRConfig:
    checkpoint: str = "mobilenet-v2"
    steps: int = 50
    batch_size: int = 32
    lr: float = 1e-4
    temperature: float = 0.5
    image_size: int | None = None
    projection_dim: int = 128
    seed: int = 0

    _parameter_constraints: ClassVar[Constraints] = {
        "steps": Interval(Integral, 1, 1_000_000),
        "batch_size": Interval(Integral, 2, 4096),
        "lr": Interval(Real, 0.0, 1.0, closed="right"),
        "temperature": Interval(Real, 0.0, 10.0, closed="right"),
        "image_size": [None, Interval(Integral, 16, 1024)],
        "projection_dim": Interval(Integral, 2, 4096),
    }

    def __post_init__(self) -> None:
        validate_params(self, self._parameter_constraints,
                        hints={"batch_size": "contrastive learning needs at least 2 images per batch"})


def nt_xent(z1: Any, z2: Any, temperature: float) -> Any:
    """Normalised-temperature cross entropy of two views (2N × 2N similarities, positives off the diagonal)."""
    import torch
    import torch.nn.functional as F

    z = F.normalize(torch.cat([z1, z2]), dim=1)
    sim = z @ z.t() / temperature
    n = z1.shape[0]
    sim = sim.masked_fill(torch.eye(2 * n, dtype=torch.bool, device=z.device), float("-inf"))
    target = torch.cat([torch.arange(n, 2 * n), torch.arange(0, n)]).to(z.device)
    return F.cross_entropy(sim, target)


class _Views:
    """Batch k of epoch e: a seeded draw of images, each augmented twice (a pure function of (seed, e, k))."""

    def __init__(self, crops: np.ndarray, steps: int, batch_size: int, seed: int, to_pixels: Any) -> None:
        from transferops.vision.augment import make_augmenter

        self.crops, self.steps, self.bs, self.seed, self.to_pixels = crops, steps, batch_size, seed, to_pixels
        self.aug = make_augmenter("standard")

    def __len__(self) -> int:
        return self.steps

    def batches(self, epoch: int, start: int = 0) -> Any:
        import torch

        for k in range(start, self.steps):
            rng = np.random.default_rng([self.seed, epoch, k])
            idx = rng.choice(len(self.crops), min(self.bs, len(self.crops)), replace=False)
            c = self.crops[idx]
            assert self.aug is not None
            v1 = self.aug(c, seed=(self.seed, epoch, k, 1))
            v2 = self.aug(c, seed=(self.seed, epoch, k, 2))
            yield torch.from_numpy(self.to_pixels(v1)), torch.from_numpy(self.to_pixels(v2))


class _SimCLRLoss:
    def __init__(self, temperature: float) -> None:
        self.temperature = temperature

    def loss(self, module: Any, batch: Any) -> tuple[Any, int]:
        v1, v2 = batch
        return nt_xent(module(v1), module(v2), self.temperature), int(v1.shape[0])


def probe_score(checkpoint: str | Path, data: str | Path, *, image_size: int | None, seed: int = 0) -> float:
    """Cross-validated logistic-probe macro-F1 on frozen features of a labeled folder."""
    from transferops.select.scores import cv_folds, probe_cv_scores
    from transferops.vision.data import load_images
    from transferops.vision.select import frozen_features

    dec = load_images(data)
    y = np.asarray([dec.data.labels.index(v) for v in dec.data.y])
    f = frozen_features(str(checkpoint), dec.images, image_size=image_size)
    return float(probe_cv_scores(f, y, cv_folds(y, max_folds=5, seed=seed), seed=seed)["macro_f1"])


def adapt_images(unlabeled: str | Path, *, out: str | Path, config: SimCLRConfig | None = None,
                 probe_data: str | Path | None = None) -> dict[str, Any]:
    """Contrastive continued pretraining; returns the ``adapt.json`` document."""
    import torch

    from transferops.checkpoints.image import resolve_image_checkpoint
    from transferops.errors import ConfigError
    from transferops.finetune.loop import LoopConfig, TrainLoop
    from transferops.modality.image import IMAGE
    from transferops.modality.image.preprocess import ImagePreprocessing
    from transferops.vision.data import list_images
    from transferops.vision.model import WithFeatures, load_image_classifier

    cfg = config or SimCLRConfig()
    out = Path(out)
    if (out / "config.json").exists():
        raise ConfigError(f"out: {out} already holds a checkpoint; choose another --out")
    torch.manual_seed(cfg.seed)
    ck = resolve_image_checkpoint(cfg.checkpoint)
    pre = ImagePreprocessing.from_folder(ck.path).at_size(cfg.image_size)
    files = list_images(unlabeled)
    if len(files) < 2:
        raise ConfigError(f"unlabeled: {unlabeled} has {len(files)} image; contrastive learning needs at least 2")
    crops = np.stack([np.asarray(pre.crop_image(im)) for im in IMAGE.check_inputs([str(f) for f in files])])
    model = load_image_classifier(ck.path)
    feats = WithFeatures.wrap(model)
    dim = int(feats(torch.zeros(2, 3, pre.crop, pre.crop))[1].shape[1])

    class Contrastive(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.backbone = feats
            self.proj = torch.nn.Sequential(torch.nn.Linear(dim, dim), torch.nn.ReLU(),
                                            torch.nn.Linear(dim, cfg.projection_dim))

        def forward(self, pv: Any) -> Any:
            return self.proj(self.backbone(pv)[1])

    net = Contrastive()
    for p in model.classifier.parameters():
        p.requires_grad_(False)  # the ImageNet head is not part of the representation
    before = probe_score(ck.path, probe_data, image_size=cfg.image_size, seed=cfg.seed) if probe_data else None
    say(f"SimCLR on {len(files)} unlabeled images, {cfg.steps} steps of {min(cfg.batch_size, len(files))}, "
        f"{pre.crop} px")
    t0 = time.perf_counter()
    net.train()
    loop = TrainLoop(LoopConfig(lr=cfg.lr, epochs=1, select_best=False, save_epochs=False,
                                log_every=max(1, cfg.steps // 5), desc="simclr"))
    res = loop.run(net, _SimCLRLoss(cfg.temperature), _Views(crops, cfg.steps, cfg.batch_size, cfg.seed,
                                                             pre.normalise))
    seconds = time.perf_counter() - t0
    model.eval()
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(str(out))
    pre.save(out)
    after = probe_score(out, probe_data, image_size=cfg.image_size, seed=cfg.seed) if probe_data else None
    losses = [h["loss"] for h in res.history if "loss" in h]  # the loop's step records (log_every)
    doc = {"kind": "adapted_checkpoint", "modality": "image", "objective": "simclr_nt_xent",
           "parent": {"name": ck.name, "path": str(ck.path)}, "config": asdict(cfg), "unlabeled_images": len(files),
           "train_seconds": round(seconds, 1), "history": res.history,
           "first_loss": losses[0] if losses else None, "last_loss": losses[-1] if losses else None,
           "probe": None if probe_data is None else {
               "data": str(probe_data), "metric": "probe_macro_f1 (5-fold CV, frozen features)",
               "before": before, "after": after, "gain": None if before is None or after is None else after - before}}
    from transferops.artifacts.manifest import write_manifest

    # the one manifest writer (stamps format and library versions), as the text adapt's adapt.json
    return dict(write_manifest(out, doc, filename="adapt.json"))


def format_adapt(doc: dict[str, Any]) -> str:
    lines = [f"contrastive (SimCLR) continued pretraining of {doc['parent']['name']} on {doc['unlabeled_images']} "
             f"unlabeled images: {doc['config']['steps']} steps in {doc['train_seconds']:.1f}s"]
    if doc.get("first_loss") is not None:
        lines.append(f"  NT-Xent loss {doc['first_loss']:.4f} → {doc['last_loss']:.4f}")
    p = doc.get("probe")
    if p:
        lines.append(f"  probe macro-F1 on {p['data']}: before {p['before']:.4f} → after {p['after']:.4f} "
                     f"(gain {p['gain']:+.4f}; small runs may gain nothing — reported as measured)")
    return "\n".join(lines)


__all__ = ["SimCLRConfig", "adapt_images", "format_adapt", "nt_xent", "probe_score"]

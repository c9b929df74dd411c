"""Models of the tabular stage beyond the trees baseline.

* :class:`FTTModel` — the FT-Transformer of ``rtdl-revisiting-models`` (Gorishniy et al. 2021; the library's
  architecture, not a re-implementation), trained by the project's :class:`~transferops.finetune.loop.TrainLoop`
  with cross-entropy or focal loss and class weights of any ratio; best epoch on validation.
* :func:`pretrain` — self-supervised pretraining on unlabeled rows by *replaced-feature detection*: each
  feature of a row is swapped, with probability ``corrupt``, for the same feature of another random row
  of the batch, and the network predicts which features were swapped (the tabular analogue of ELECTRA's
  replaced-token detection; Rubachev et al. 2022 found it among the best objectives for FT-Transformer).
  The embeddings and transformer blocks are kept; fine-tuning replaces the output head.
* :class:`StackModel` — a logistic-regression meta-learner over out-of-fold probabilities of the members.

Weights are safetensors, configuration JSON: nothing is pickled.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from numbers import Integral, Real
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from transferops._extras import require
from transferops._validation import Constraints, Interval, Options, validate_params
from transferops.errors import ArtifactError, NotFittedError


@dataclass
class FTTConfig:
    """FT-Transformer size and training (defaults sized for CPU: 2 blocks of width 64)."""

    n_blocks: int = 2
    d_block: int = 64
    heads: int = 8
    attention_dropout: float = 0.1
    ffn_dropout: float = 0.1
    epochs: int = 30
    batch_size: int = 128
    lr: float = 1e-3
    weight_decay: float = 1e-5
    patience: int = 6
    loss: str = "ce"
    focal_gamma: float = 2.0
    seed: int = 0

    _parameter_constraints: ClassVar[Constraints] = {
        "n_blocks": Interval(Integral, 1, 12), "d_block": Interval(Integral, 8, 1024),
        "heads": Interval(Integral, 1, 64), "attention_dropout": Interval(Real, 0, 1, closed="left"),
        "ffn_dropout": Interval(Real, 0, 1, closed="left"), "epochs": Interval(Integral, 1, 10_000),
        "batch_size": Interval(Integral, 1, 1 << 16), "lr": Interval(Real, 0, 1, closed="right"),
        "weight_decay": Interval(Real, 0, None), "patience": Interval(Integral, 1, 1000),
        "loss": Options(("ce", "focal")), "focal_gamma": Interval(Real, 0, 10),
        "seed": Interval(Integral, 0, None),
    }

    def __post_init__(self) -> None:
        validate_params(self, self._parameter_constraints)
        if self.d_block % self.heads:
            from transferops.errors import ConfigError

            raise ConfigError(f"d_block: {self.d_block} must be a multiple of heads ({self.heads})")


class torch_threads:
    """Run with ``n`` intra-op torch threads, then restore. The tabular networks are small: on a shared
    2-core machine 2 threads made 3 epochs of 420 rows take 24 s instead of 0.9 s with 1 (measured), so
    the default is 1 (``TRANSFEROPS_TABULAR_THREADS`` or ``threads=`` raise it)."""

    def __init__(self, n: int | None = None) -> None:
        import os

        self.n = n if n is not None else int(os.environ.get("TRANSFEROPS_TABULAR_THREADS", "1"))

    def __enter__(self) -> None:
        import torch

        self.old = torch.get_num_threads()
        if self.n > 0:
            torch.set_num_threads(self.n)

    def __exit__(self, *exc: Any) -> None:
        import torch

        torch.set_num_threads(self.old)


def build_ftt(n_cont: int, cardinalities: list[int], d_out: int, cfg: FTTConfig) -> Any:
    rtdl = require("rtdl_revisiting_models", "tabular")
    return rtdl.FTTransformer(n_cont_features=n_cont, cat_cardinalities=list(cardinalities), d_out=d_out,
                              n_blocks=cfg.n_blocks, d_block=cfg.d_block, attention_n_heads=cfg.heads,
                              attention_dropout=cfg.attention_dropout, ffn_d_hidden=None,
                              ffn_d_hidden_multiplier=4 / 3, ffn_dropout=cfg.ffn_dropout, residual_dropout=0.0)


def net_forward(module: Any, x_cont: Any, x_cat: Any) -> Any:
    """rtdl's forward with an empty numeric or categorical block passed as ``None``."""
    return module(x_cont if x_cont.shape[1] else None, x_cat if x_cat.shape[1] else None)


class _Rows:
    """TrainLoop data source: shuffled mini-batches of ``(x_cont, x_cat, y)`` (a pure function of the epoch)."""

    def __init__(self, xc: np.ndarray, xk: np.ndarray, y: np.ndarray, batch_size: int, seed: int) -> None:
        import torch

        self.xc = torch.from_numpy(np.array(xc, dtype=np.float32))
        self.xk = torch.from_numpy(np.array(xk, dtype=np.int64))
        self.y = torch.from_numpy(np.array(y, dtype=np.int64))
        self.bs, self.seed = batch_size, seed

    def __len__(self) -> int:
        return max(1, math.ceil(len(self.y) / self.bs))

    def batches(self, epoch: int, start: int = 0) -> Iterator[dict[str, Any]]:
        order = np.random.default_rng(self.seed + epoch).permutation(len(self.y))
        for i in range(start, len(self)):
            idx = order[i * self.bs:(i + 1) * self.bs]
            yield {"x_cont": self.xc[idx], "x_cat": self.xk[idx], "y": self.y[idx]}


class _Supervised:
    def __init__(self, loss_fn: Any) -> None:
        self.loss_fn = loss_fn

    def loss(self, module: Any, batch: dict[str, Any]) -> tuple[Any, int]:
        out = net_forward(module, batch["x_cont"], batch["x_cat"])
        return self.loss_fn(out, batch["y"]), int(batch["y"].shape[0])


class _ReplacedFeatureDetection:
    """Swap each feature with probability ``p`` for another row's value; predict which were swapped."""

    def __init__(self, p: float, seed: int) -> None:
        self.p = p
        import torch

        self.gen = torch.Generator().manual_seed(seed)

    def loss(self, module: Any, batch: dict[str, Any]) -> tuple[Any, int]:
        import torch

        xc, xk = batch["x_cont"], batch["x_cat"]
        n = xc.shape[0]
        d = xc.shape[1] + xk.shape[1]
        mask = torch.rand(n, d, generator=self.gen) < self.p
        donors = torch.randint(0, n, (n, d), generator=self.gen)
        cols = torch.arange(d)
        if xc.shape[1]:
            mc = mask[:, :xc.shape[1]]
            xc = torch.where(mc, xc[donors[:, :xc.shape[1]], cols[:xc.shape[1]]], xc)
        if xk.shape[1]:
            mk = mask[:, xc.shape[1]:]
            xk = torch.where(mk, xk[donors[:, xc.shape[1]:], cols[:xk.shape[1]]], xk)
        logits = net_forward(module, xc, xk)
        return torch.nn.functional.binary_cross_entropy_with_logits(logits, mask.float()), n


def _loop(cfg: FTTConfig, *, epochs: int, metric: str | None, max_steps: int | None = None) -> Any:
    from transferops.finetune.loop import LoopConfig, TrainLoop

    return TrainLoop(LoopConfig(lr=cfg.lr, epochs=epochs, max_steps=max_steps, weight_decay=cfg.weight_decay,
                                metric=metric, patience=cfg.patience if metric else None, save_epochs=False,
                                clip_grad_norm=1.0, desc="tabular epoch"))


def val_score(proba: np.ndarray, y: np.ndarray) -> float:
    """The search's selection score: PR-AUC (average precision) of the positive class for binary tasks,
    macro-F1 of the argmax otherwise."""
    from sklearn.metrics import average_precision_score, f1_score

    if proba.shape[1] == 2:
        if len(np.unique(y)) < 2:
            return float("nan")
        return float(average_precision_score(y, proba[:, 1]))
    return float(f1_score(y, proba.argmax(1), average="macro"))


class FTTModel:
    """FT-Transformer classifier on ``(scaled numeric, category codes)``."""

    def __init__(self, config: FTTConfig | None = None, *, class_weight: np.ndarray | None = None,
                 init_state: dict[str, Any] | None = None) -> None:
        self.config = config or FTTConfig()
        self.class_weight = class_weight
        self.init_state = init_state

    def fit(self, xc: np.ndarray, xk: np.ndarray, y: np.ndarray, *, n_classes: int, cardinalities: list[int],
            validation: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None) -> FTTModel:
        import torch

        from transferops.finetune.losses import build_loss

        cfg = self.config
        torch.manual_seed(cfg.seed)
        self.n_classes_, self.cardinalities_, self.n_cont_ = n_classes, list(cardinalities), int(xc.shape[1])
        module = build_ftt(self.n_cont_, self.cardinalities_, n_classes, cfg)
        self.pretrained_keys_ = 0
        if self.init_state is not None:
            self.pretrained_keys_ = load_matching(module, self.init_state)
        weight = None if self.class_weight is None else torch.tensor(self.class_weight, dtype=torch.float32)
        loss_fn = build_loss(cfg.loss, multilabel=False, gamma=cfg.focal_gamma, weight=weight)
        evaluate: Callable[[Any], dict[str, float]] | None = None
        if validation is not None and len(np.unique(validation[2])) > 1:
            vc, vk, vy = validation

            def evaluate(m: Any) -> dict[str, float]:
                return {"val_score": val_score(self._proba(m, vc, vk), vy)}

        with torch_threads():
            res = _loop(cfg, epochs=cfg.epochs, metric="val_score" if evaluate else None).run(
                module, _Supervised(loss_fn), _Rows(xc, xk, np.asarray(y, dtype=np.int64), cfg.batch_size, cfg.seed),
                evaluate=evaluate)
        self.module_ = module.cpu().eval()
        self.history_ = res.to_dict()
        return self

    @staticmethod
    def _proba(module: Any, xc: np.ndarray, xk: np.ndarray, batch_size: int = 1024) -> np.ndarray:
        import torch

        was = module.training
        module.eval()
        dev = next(module.parameters()).device
        outs = []
        with torch.no_grad():
            for i in range(0, len(xc), batch_size):
                c = torch.from_numpy(np.ascontiguousarray(xc[i:i + batch_size], dtype=np.float32)).to(dev)
                k = torch.from_numpy(xk[i:i + batch_size]).to(dev)
                outs.append(torch.softmax(net_forward(module, c, k), -1).cpu().numpy())
        module.train(was)
        return np.concatenate(outs) if outs else np.zeros((0, 2))

    def predict_proba(self, xc: np.ndarray, xk: np.ndarray) -> np.ndarray:
        if getattr(self, "module_", None) is None:
            raise NotFittedError("FTTModel: call fit() first")
        with torch_threads():
            return self._proba(self.module_, xc, xk).astype(np.float64)

    # ------------------------------------------------------------ persistence (safetensors + JSON)
    def save(self, folder: str | Path, name: str = "transformer") -> None:
        from safetensors.torch import save_file

        folder = Path(folder)
        save_file({k: v.contiguous() for k, v in self.module_.state_dict().items()}, folder / f"{name}.safetensors")
        (folder / f"{name}.json").write_text(json.dumps({"config": asdict(self.config), "n_classes": self.n_classes_,
                                                         "cardinalities": self.cardinalities_,
                                                         "n_cont": self.n_cont_}, indent=1))

    @classmethod
    def load(cls, folder: str | Path, name: str = "transformer") -> FTTModel:
        from safetensors.torch import load_file

        folder = Path(folder)
        f = folder / f"{name}.json"
        if not f.exists():
            raise ArtifactError(f"{folder}: {name}.json is missing; the folder is incomplete")
        meta = json.loads(f.read_text())
        m = cls(FTTConfig(**meta["config"]))
        m.n_classes_, m.cardinalities_ = int(meta["n_classes"]), list(meta["cardinalities"])
        m.n_cont_ = int(meta["n_cont"])
        module = build_ftt(m.n_cont_, m.cardinalities_, m.n_classes_, m.config)
        module.load_state_dict(load_file(str(folder / f"{name}.safetensors")))
        m.module_ = module.eval()
        return m


def load_matching(module: Any, state: dict[str, Any]) -> int:
    """Copy every tensor of ``state`` whose name and shape match (the pretrained embeddings and blocks;
    the output head differs); returns how many were copied."""
    own = module.state_dict()
    keep = {k: v for k, v in state.items() if k in own and tuple(own[k].shape) == tuple(v.shape)
            and not k.startswith("backbone.output.")}
    module.load_state_dict(keep, strict=False)
    return len(keep)


def pretrain(xc: np.ndarray, xk: np.ndarray, *, cardinalities: list[int], config: FTTConfig | None = None,
             steps: int = 500, corrupt: float = 0.3) -> tuple[Any, dict[str, Any]]:
    """Replaced-feature-detection pretraining on unlabeled rows: returns the trained module (its output
    head predicts, per feature, whether it was swapped) and the loop's record."""
    import torch

    cfg = config or FTTConfig()
    torch.manual_seed(cfg.seed)
    d = int(xc.shape[1] + xk.shape[1])
    module = build_ftt(int(xc.shape[1]), list(cardinalities), d, cfg)
    src = _Rows(xc, xk, np.zeros(len(xc), dtype=np.int64), cfg.batch_size, cfg.seed)
    epochs = max(1, math.ceil(steps / len(src)))
    with torch_threads():
        res = _loop(cfg, epochs=epochs, metric=None, max_steps=steps).run(
            module, _ReplacedFeatureDetection(corrupt, cfg.seed), src)
    return module.cpu().eval(), res.to_dict()


class StackModel:
    """Logistic regression over the members' out-of-fold probabilities (binary: the positive
    probability's logit per member; multi-class: every class's log-probability)."""

    def __init__(self, *, C: float = 1.0, seed: int = 0) -> None:
        self.C = C
        self.seed = seed

    @staticmethod
    def features(probas: list[np.ndarray]) -> np.ndarray:
        cols = []
        for p in probas:
            p = np.clip(p, 1e-6, 1 - 1e-6)
            cols.append(np.log(p[:, 1:2] / p[:, 0:1]) if p.shape[1] == 2 else np.log(p))
        return np.hstack(cols)

    def fit(self, oof: list[np.ndarray], y: np.ndarray, *, n_classes: int) -> StackModel:
        from sklearn.linear_model import LogisticRegression

        lr = LogisticRegression(C=self.C, max_iter=2000, random_state=self.seed).fit(self.features(oof), y)
        coef = np.zeros((1 if n_classes == 2 else n_classes, lr.coef_.shape[1]))
        icpt = np.zeros(coef.shape[0])
        if n_classes == 2:
            coef[0], icpt[0] = lr.coef_[0], lr.intercept_[0]
        else:
            coef[lr.classes_], icpt[lr.classes_] = lr.coef_, lr.intercept_
        self.coef_, self.intercept_, self.n_classes_ = coef, icpt, n_classes
        return self

    def predict_proba(self, probas: list[np.ndarray]) -> np.ndarray:
        z = self.features(probas) @ self.coef_.T + self.intercept_
        if self.n_classes_ == 2:
            p1 = 1.0 / (1.0 + np.exp(-z[:, 0]))
            return np.stack([1 - p1, p1], axis=1)
        z = z - z.max(1, keepdims=True)
        e = np.exp(z)
        return np.asarray(e / e.sum(1, keepdims=True))

    def to_dict(self) -> dict[str, Any]:
        return {"coef": self.coef_.tolist(), "intercept": self.intercept_.tolist(), "n_classes": self.n_classes_,
                "C": self.C}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> StackModel:
        m = cls(C=float(d.get("C", 1.0)))
        m.coef_, m.intercept_ = np.asarray(d["coef"], dtype=np.float64), np.asarray(d["intercept"], dtype=np.float64)
        m.n_classes_ = int(d["n_classes"])
        return m


__all__ = ["FTTConfig", "FTTModel", "StackModel", "build_ftt", "load_matching", "net_forward", "pretrain",
           "val_score"]

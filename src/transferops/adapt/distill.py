"""Knowledge distillation: a fine-tuned teacher's soft labels train a smaller student.

Loss per batch: ``alpha · T² · KL(student_T ‖ teacher_T) + (1 − alpha) · CE(student, gold)``, the
hard term only on labeled rows (the teacher's train split); optional unlabeled texts add soft
targets only. The student is either another checkpoint (``student="minilm-l6"``), or the first
``layers`` encoder layers of the teacher's own fine-tuned backbone (head included) when no smaller
checkpoint exists. The result is a normal artifact folder (``transferops.load`` works on it) that
keeps the teacher's splits, so teacher and student are compared on the same test texts.
"""

from __future__ import annotations

import copy
import math
import shutil
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from numbers import Integral, Real
from pathlib import Path
from typing import Any, ClassVar, cast

import numpy as np
import torch

import transferops
from transferops._progress import say
from transferops._util import dir_size, human_bytes, package_versions, sha256_file
from transferops._validation import Constraints, Interval, validate_params
from transferops.artifacts.classifier import ClassifierBase
from transferops.artifacts.manifest import read_manifest, write_manifest
from transferops.constants import DATA_DIR, LABEL_COL, MANIFEST_NAME, MODEL_DIR, TEST_SPLIT, TEXT_COL
from transferops.errors import ConfigError
from transferops.finetune.api import TrainResult
from transferops.finetune.loop import LoopConfig, TrainLoop
from transferops.finetune.strategies import encoder_layers
from transferops.metrics import classification_metrics, encode_labels
from transferops.modeling import batched_forward, quiet_transformers, set_threads, sigmoid, softmax
from transferops.truncation import encode_texts, set_truncation, truncation_of


@dataclass
class DistillConfig:
    """Distillation settings; saved in the student's manifest under ``distillation``."""

    student: str | None = field(default=None, metadata={
        "help": "student checkpoint (name, HF folder, or a trained artifact with the same labels); "
                "None: a truncated copy of the teacher"})
    layers: int | None = field(default=None, metadata={"help": "keep only the first k encoder layers"})
    temperature: float = 2.0
    alpha: float = field(default=0.5, metadata={"help": "weight of the soft (KL) term; 1 - alpha on gold CE"})
    epochs: int = 3
    max_steps: int | None = None
    lr: float = 1e-4
    batch_size: int = 16
    max_length: int | None = field(default=None, metadata={"help": "None: the teacher's"})
    warmup_ratio: float = 0.06
    weight_decay: float = 0.01
    seed: int = 0
    eval_batch_size: int = 64
    latency_texts: int = field(default=50, metadata={"help": "test texts timed one at a time; 0 skips"})
    threads: int | None = None

    _parameter_constraints: ClassVar[Constraints] = {
        "layers": [None, Interval(Integral, 1, None)],
        "temperature": Interval(Real, 1e-3, 100.0),
        "alpha": Interval(Real, 0.0, 1.0),
        "epochs": Interval(Integral, 1, 1000),
        "max_steps": [None, Interval(Integral, 1, None)],
        "lr": Interval(Real, 1e-9, 1.0),
        "batch_size": Interval(Integral, 1, 4096),
        "max_length": [None, Interval(Integral, 8, 8192)],
        "warmup_ratio": Interval(Real, 0.0, 0.5),
        "weight_decay": Interval(Real, 0.0, 1.0),
        "eval_batch_size": Interval(Integral, 1, None),
        "latency_texts": Interval(Integral, 0, None),
    }

    def __post_init__(self) -> None:
        if self.student is None and self.layers is None:
            raise ConfigError("student/layers: give a student checkpoint (--student minilm-l6) or a layer "
                              "count to truncate the teacher to (--layers 3)")
        validate_params(self, self._parameter_constraints)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class DistillResult(TrainResult):
    """A distilled student is a normal artifact: a ``TrainResult`` plus the teacher comparison."""

    @property
    def comparison(self) -> dict[str, Any]:
        return dict(self.manifest["distillation"]["comparison"])

    def summary(self) -> str:
        c = self.comparison
        t, s = c["teacher"], c["student"]
        lines = [f"student saved to {self.path}",
                 f"  {'':<9}{'accuracy':>9}{'macro-F1':>10}{'params':>10}{'size':>11}{'ms/text':>9}"
                 + ("  int8 ms/text" if "onnx_int8_ms" in s else "")]
        for name, r in (("teacher", t), ("student", s)):
            lat = f"{r['latency_ms']['median']:>9.1f}" if r.get("latency_ms") else f"{'-':>9}"
            onnx = f"  {r['onnx_int8_ms']['median']:>13.1f}" if r.get("onnx_int8_ms") else ""
            lines.append(f"  {name:<9}{r['accuracy']:>9.4f}{r['macro_f1']:>10.4f}{r['params'] / 1e6:>9.1f}M"
                         f"{human_bytes(r['size_bytes']):>11}{lat}{onnx}")
        speed = f"; {c['speedup']:.1f}x faster (PyTorch, one text at a time)" if c.get("speedup") else ""
        lines.append(f"  student keeps {c['accuracy_retained'] * 100:.1f}% of the teacher's accuracy; agrees "
                     f"with it on {c['agreement'] * 100:.1f}% of test texts{speed}")
        lines += [f"  warning: {w}" for w in self.warnings]
        return "\n".join(lines)


# --------------------------------------------------------------------------- student construction


def truncate_layers(model: torch.nn.Module, k: int) -> torch.nn.Module:
    """Keep the first ``k`` encoder layers of a HF encoder in place (config updated to match)."""
    layers = encoder_layers(model)
    n = len(layers)
    if not 1 <= k < n:
        raise ConfigError(f"layers: the backbone has {n} encoder layers; keep between 1 and {n - 1}")
    base = getattr(model, "base_model", model)
    for path in ("encoder.layer", "encoder.layers", "transformer.layer", "layers"):
        *parents, attr = path.split(".")
        obj: Any = base
        try:
            for p in parents:
                obj = getattr(obj, p)
        except AttributeError:
            continue
        if getattr(obj, attr, None) is layers:
            setattr(obj, attr, torch.nn.ModuleList(list(layers)[:k]))
            break
    for key in ("num_hidden_layers", "n_layers", "num_layers"):
        if hasattr(model.config, key):
            setattr(model.config, key, k)
    return model


def _generic_labels(id2label: dict[Any, Any]) -> bool:
    return all(str(v) == f"LABEL_{k}" for k, v in id2label.items())


def _teacher_copy(teacher: ClassifierBase) -> torch.nn.Module:
    if teacher.manifest.is_adapter:  # a fresh copy with the adapter folded into plain weights
        from transferops.artifacts.model import load_torch_classifier, merge_refusal

        # a prompt-learning adapter cannot be folded in: a fresh (unmerged, frozen) PEFT copy instead
        return load_torch_classifier(teacher.manifest, teacher.path / MODEL_DIR,
                                     merge_adapter=merge_refusal(teacher.manifest) is None)
    return copy.deepcopy(teacher.torch_model)


def build_student(teacher: ClassifierBase, cfg: DistillConfig
                  ) -> tuple[Any, Any, dict[str, Any]]:
    """(model, tokenizer, description) of the student before distillation."""
    from transformers import AutoConfig, AutoModelForSequenceClassification

    from transferops.checkpoints import resolve_checkpoint
    from transferops.modeling import build_classifier, load_tokenizer

    labels, task = teacher.labels, teacher.task
    desc: dict[str, Any]
    model: Any
    if cfg.student is None:
        if teacher.no_torch_reason is not None:  # an ensemble, an export: nothing to copy and truncate
            raise ConfigError(f"student: an {teacher.manifest.kind} teacher has no single backbone to truncate; "
                              "name a student checkpoint (--student minilm-l6)")
        model, tok = _teacher_copy(teacher), teacher.tokenizer
        base = dict(teacher.manifest.get("base") or {})
        desc = {"kind": "truncated_teacher", "from": str(teacher.path), "base": base}
    elif (Path(cfg.student) / MANIFEST_NAME).exists():
        sm = read_manifest(cfg.student)
        if sm["labels"] != labels or sm["task"] != task:
            raise ConfigError(f"student: {cfg.student} has the label map {sm['labels']} ({sm['task']}) but "
                              f"the teacher has {labels} ({task}); distil into a checkpoint (--student "
                              "minilm-l6) or a student trained on the same labels")
        if sm.is_adapter:
            raise ConfigError(f"student: {cfg.student} is a PEFT adapter artifact; use its base checkpoint "
                              f"(--student {sm['base']['name']}) instead")
        with quiet_transformers():
            model = AutoModelForSequenceClassification.from_pretrained(
                str(Path(cfg.student) / MODEL_DIR), local_files_only=True, use_safetensors=True)
        tok = load_tokenizer(Path(cfg.student) / MODEL_DIR)
        base = dict(sm["base"])
        desc = {"kind": "artifact", "from": str(cfg.student), "base": base}
    else:
        ck = resolve_checkpoint(cfg.student)
        with quiet_transformers():
            hf = AutoConfig.from_pretrained(str(ck.path), local_files_only=True)
        id2label = getattr(hf, "id2label", None) or {}
        if id2label and not _generic_labels(id2label) and [id2label[i] for i in sorted(id2label)] != labels:
            raise ConfigError(f"student: {ck.name} is a classifier with labels "
                              f"{[id2label[i] for i in sorted(id2label)]} but the teacher has {labels}; "
                              "label maps must match (or use a plain pretrained checkpoint)")
        model = build_classifier(ck.path, labels, task)
        tok = load_tokenizer(ck.path)
        base = {"name": ck.name, "path": str(ck.path), "source": ck.source, "sha256": ck.sha256()}
        desc = {"kind": "checkpoint", "from": ck.name, "base": base}
    if cfg.layers is not None:
        n0 = len(encoder_layers(model))
        truncate_layers(model, cfg.layers)
        desc["layers"] = {"kept": cfg.layers, "of": n0}
    return model, tok, desc


# --------------------------------------------------------------------------- loss and loop


def distill_loss(student_logits: torch.Tensor, teacher_logits: torch.Tensor, target: torch.Tensor,
                 has_label: torch.Tensor, *, temperature: float, alpha: float, multilabel: bool
                 ) -> torch.Tensor:
    """Soft KL (scaled by T² so its gradient size does not depend on T) + hard CE on labeled rows."""
    t = temperature
    if multilabel:
        soft_t = torch.sigmoid(teacher_logits / t)
        soft = torch.nn.functional.binary_cross_entropy_with_logits(student_logits / t, soft_t) * t * t
    else:
        soft = torch.nn.functional.kl_div(torch.log_softmax(student_logits / t, dim=-1),
                                          torch.log_softmax(teacher_logits / t, dim=-1),
                                          reduction="batchmean", log_target=True) * t * t
    if alpha >= 1.0 or not bool(has_label.any()):
        return alpha * soft if alpha < 1.0 else soft
    s, y = student_logits[has_label], target[has_label]
    if multilabel:
        hard = torch.nn.functional.binary_cross_entropy_with_logits(s, y.float())
    else:
        hard = torch.nn.functional.cross_entropy(s, y.long())
    return alpha * soft + (1.0 - alpha) * hard


class DistillLoss:
    """The objective of distillation over the shared loop: :func:`distill_loss` on the student's logits."""

    def __init__(self, *, temperature: float, alpha: float, multilabel: bool) -> None:
        self.temperature, self.alpha, self.multilabel = temperature, alpha, multilabel

    def loss(self, module: torch.nn.Module, batch: dict[str, Any]) -> tuple[torch.Tensor, int]:
        logits = module(**batch["inputs"]).logits
        return distill_loss(logits, batch["teacher"], batch["target"], batch["has_label"],
                            temperature=self.temperature, alpha=self.alpha, multilabel=self.multilabel
                            ), int(logits.shape[0])


class DistillSource:
    """Texts (labeled train rows, then unlabeled ones) with the teacher's logits, shuffled per epoch by
    ``(seed, epoch)`` and tokenized per batch."""

    def __init__(self, tokenizer: Any, texts: list[str], teacher_logits: np.ndarray, target: np.ndarray,
                 has_label: np.ndarray, *, batch_size: int, max_length: int, seed: int) -> None:
        self.tokenizer, self.texts, self.teacher_logits = tokenizer, texts, teacher_logits
        self.target, self.has_label = target, has_label
        self.batch_size, self.max_length, self.seed = batch_size, max_length, seed

    def __len__(self) -> int:
        return math.ceil(len(self.texts) / self.batch_size)

    def batches(self, epoch: int, start: int = 0) -> Iterator[dict[str, Any]]:
        order = np.random.default_rng([self.seed, epoch]).permutation(len(self.texts))
        for s in range(start * self.batch_size, len(self.texts), self.batch_size):
            idx = order[s:s + self.batch_size]
            enc = encode_texts(self.tokenizer, [self.texts[i] for i in idx], self.max_length, padding=True,
                               return_tensors="pt")
            yield {"inputs": dict(enc), "teacher": torch.as_tensor(self.teacher_logits[idx]),
                   "target": torch.as_tensor(self.target[idx]), "has_label": torch.as_tensor(self.has_label[idx])}


def _metrics(logits: np.ndarray, y: np.ndarray, multilabel: bool) -> dict[str, float]:
    proba = sigmoid(logits) if multilabel else softmax(logits)
    return classification_metrics(y, proba, multilabel=multilabel)


def _split_xy(model: ClassifierBase, name: str) -> tuple[list[str], np.ndarray]:
    df = model.split(name)
    y_raw = [list(v) for v in df[LABEL_COL]] if model.multilabel else df[LABEL_COL].tolist()
    return df[TEXT_COL].astype(str).tolist(), encode_labels(y_raw, model.labels, model.multilabel)


def measure_latency(predict: Any, texts: list[str], *, warmup: int = 3) -> dict[str, float]:
    """Milliseconds per text, one text per call (what an online request sees)."""
    for t in texts[:warmup]:
        predict([t])
    times = []
    for t in texts:
        t0 = time.perf_counter()
        predict([t])
        times.append((time.perf_counter() - t0) * 1000)
    a = np.asarray(times)
    return {"median": round(float(np.median(a)), 3), "p95": round(float(np.percentile(a, 95)), 3),
            "n": len(texts)}


def _params(model: torch.nn.Module) -> int:
    return int(sum(p.numel() for p in model.parameters()))


def _onnx_latency(artifact: Path, texts: list[str], workdir: Path) -> dict[str, Any]:
    from transferops.deploy.onnx_export import export_onnx
    from transferops.deploy.onnx_runtime import OnnxModel
    from transferops.errors import GateFailedError

    dst = workdir / artifact.name
    try:
        export_onnx(artifact, dst, quantize="int8", sample_size=min(200, max(20, len(texts))), overwrite=True)
    except GateFailedError as exc:  # the folder is still written; report the timing with the failure
        say(f"ONNX export gate failed for {artifact}: {exc}")
    m = OnnxModel(dst, variant="int8")
    lat: dict[str, Any] = measure_latency(m.predict_proba, texts)
    lat["size_bytes"] = int((dst / "model.int8.onnx").stat().st_size)
    return lat


def distill(teacher: str | Path, *, out: str | Path, student: str | None = None, layers: int | None = None,
            unlabeled: Any = None, text_column: str = "text", config: DistillConfig | None = None,
            onnx: bool = False, name: str | None = None, **overrides: Any) -> DistillResult:
    """Distil a trained teacher artifact into a smaller student artifact.

    >>> res = distill("runs/mpnet", out="runs/small", student="minilm-l6")           # doctest: +SKIP
    >>> res = distill("runs/minilm", out="runs/minilm-3l", layers=3,
    ...               unlabeled="pool.csv")                                          # doctest: +SKIP
    >>> print(res.summary())                                                         # doctest: +SKIP
    """
    base_cfg = config or DistillConfig(student=student, layers=layers)
    merged = {**base_cfg.to_dict(), **overrides}
    if student is not None:
        merged["student"] = student
    if layers is not None:
        merged["layers"] = layers
    cfg = DistillConfig(**merged)
    set_threads(cfg.threads)
    out = Path(out)
    if (out / MANIFEST_NAME).exists():
        raise ConfigError(f"out: {out} already holds a model; choose another --out, or delete it")
    t_all = time.perf_counter()
    tm = cast(ClassifierBase, transferops.load(teacher))
    labels, task, multilabel = tm.labels, tm.task, tm.multilabel
    max_length = cfg.max_length or tm.max_length
    warns: list[str] = []

    tr_texts, y_tr = _split_xy(tm, "train")
    va_texts, y_va = _split_xy(tm, "validation")
    te_texts, y_te = _split_xy(tm, "test")
    extra: list[str] = []
    unl_info: dict[str, Any] | None = None
    if unlabeled is not None:
        from transferops.adapt.mlm import _read_pool

        pool, source = _read_pool(unlabeled, text_column)
        held = set(va_texts) | set(te_texts)
        extra = [t for t in dict.fromkeys(pool) if t not in held]
        dropped = len(pool) - len(extra)
        if dropped:
            warns.append(f"{dropped} unlabeled texts duplicate validation/test texts (or each other) and "
                         "were dropped, so the student never sees the texts it is scored on")
        unl_info = {"source": source, "texts": len(pool), "used": len(extra), "dropped": dropped}

    say(f"scoring {len(tr_texts) + len(extra)} texts with the teacher ...")
    t_logits = tm.logits(tr_texts + extra)
    texts = tr_texts + extra
    n_lab = len(tr_texts)
    has_label = np.zeros(len(texts), dtype=bool)
    has_label[:n_lab] = True
    target = (np.zeros((len(texts), len(labels)), dtype=np.float32) if multilabel
              else np.zeros(len(texts), dtype=np.int64))
    target[:n_lab] = y_tr

    torch.manual_seed(cfg.seed)
    model, tok, student_desc = build_student(tm, cfg)
    # the student cuts long texts as the teacher does (head / head_tail), in training and once served
    teacher_tok = getattr(tm, "tokenizer", None) if tm.no_torch_reason is None else None
    if teacher_tok is not None and tok is not teacher_tok:
        set_truncation(tok, truncation_of(teacher_tok))
    data = DistillSource(tok, texts, t_logits, target, has_label, batch_size=cfg.batch_size,
                         max_length=max_length, seed=cfg.seed)
    loop = TrainLoop(LoopConfig(lr=cfg.lr, epochs=cfg.epochs, max_steps=cfg.max_steps, warmup_ratio=cfg.warmup_ratio,
                                weight_decay=cfg.weight_decay, clip_grad_norm=1.0, metric="macro_f1",
                                desc="distill epoch"))
    say(f"distilling into {student_desc['kind']} ({_params(model) / 1e6:.1f}M params): {len(texts)} texts "
        f"({n_lab} labeled), {loop.total_steps(data)} steps, T={cfg.temperature}, alpha={cfg.alpha}")

    def evaluate(m: torch.nn.Module) -> dict[str, float]:
        return _metrics(batched_forward(m, tok, va_texts, max_length=max_length, batch_size=cfg.eval_batch_size,
                                        desc="validate"), y_va, multilabel)

    fit = loop.run(model, DistillLoss(temperature=cfg.temperature, alpha=cfg.alpha, multilabel=multilabel), data,
                   evaluate=evaluate)
    history, step, t_train = fit.history, fit.steps, fit.train_seconds
    model.cpu().eval()

    # ---- save as a standard artifact ------------------------------------------------------------
    out.mkdir(parents=True, exist_ok=True)
    mdir = out / MODEL_DIR
    if mdir.exists():
        shutil.rmtree(mdir)
    with quiet_transformers():
        model.save_pretrained(str(mdir), safe_serialization=True)
    tok.save_pretrained(str(mdir))
    from transferops.adapt._artifact import copy_splits, run_post_train_hooks

    copy_splits(tm.path, out)

    metrics = {"validation": _metrics(batched_forward(model, tok, va_texts, max_length=max_length,
                                                      batch_size=cfg.eval_batch_size), y_va, multilabel),
               "test": _metrics(batched_forward(model, tok, te_texts, max_length=max_length,
                                                batch_size=cfg.eval_batch_size), y_te, multilabel)}
    teacher_test_proba = tm.predict_proba(te_texts)
    teacher_test = classification_metrics(y_te, teacher_test_proba, multilabel=multilabel)
    from transferops.finetune.config import TrainConfig

    ck_ref = student_desc["base"].get("path") or student_desc["base"]["name"]
    # A valid TrainConfig, so stages that re-read the config (hooks, retrain) work on the student too.
    tcfg = {k: v for k, v in tm.manifest.config.items() if k in TrainConfig.__dataclass_fields__}
    train_cfg = TrainConfig.from_dict({**tcfg,
                                       "checkpoint": ck_ref,
                                       "strategy": "full", "epochs": cfg.epochs, "max_steps": cfg.max_steps,
                                       "lr": cfg.lr, "batch_size": cfg.batch_size, "max_length": max_length,
                                       "seed": cfg.seed, "warmup_ratio": cfg.warmup_ratio,
                                       "weight_decay": cfg.weight_decay, "grad_accum": 1})
    n_params = _params(model)
    tman = tm.manifest
    manifest: dict[str, Any] = {
        "kind": "model",
        "name": name or out.name,
        "base": {**student_desc["base"], "params": n_params},
        "task": task,
        "labels": labels,
        "strategy": {"name": "distill", "reason": f"distilled from {tm.path}", "trainable_params": n_params,
                     "total_params": n_params, "frozen_layers": 0},
        "config": train_cfg.to_dict(),
        "seed": cfg.seed,
        # the student trains with the teacher's recipe (loss, class weighting, max length)
        "recipe": tman.get("recipe", []),
        "data": {**tman.get("data", {}), **({"unlabeled": unl_info} if unl_info else {})},
        "splits": {**tman.get("splits", {}), "test_sha256": sha256_file(out / DATA_DIR / TEST_SPLIT),
                   "train_used": n_lab},
        "leakage": tman.get("leakage", {}),
        "metrics": metrics,
        "baseline": tman.get("baseline", {}),
        "history": history,
        "training": {"best_epoch": int(np.argmax([h["val_macro_f1"] for h in history])) + 1 if history else 0,
                     "steps": step, "train_seconds": round(t_train, 2)},
        "timings": {"train_seconds": round(t_train, 2),
                    "examples_per_second": round(step * cfg.batch_size / t_train, 2) if t_train else 0.0,
                    "total_seconds": 0.0},
        "versions": package_versions(),
        "warnings": warns,
        "evaluations": [],
        "distillation": {"teacher": {"path": str(tm.path), "name": tm.name, "base": tman.get("base", {}),
                                     "strategy": tman.get("strategy", {}).get("name"),
                                     "test_sha256": tman.get("splits", {}).get("test_sha256")},
                         "student_init": student_desc, "config": cfg.to_dict(), "unlabeled": unl_info},
    }
    manifest = write_manifest(out, manifest)

    # ---- teacher vs student: accuracy, size, latency ---------------------------------------------
    sm = transferops.load(out)  # also proves the student loads like any artifact
    s_pred, t_pred = sm.predict_proba(te_texts), teacher_test_proba
    agreement = (float(np.mean((s_pred >= 0.5) == (t_pred >= 0.5))) if multilabel
                 else float(np.mean(s_pred.argmax(1) == t_pred.argmax(1))))
    lat_texts = te_texts[:cfg.latency_texts]
    teacher_torch = tm.no_torch_reason is None  # an ensemble teacher has members, not one module
    t_params = _params(tm.torch_model) if teacher_torch else (tman.base.params if tman.base else 0)
    comp: dict[str, Any] = {
        "teacher": {**{k: teacher_test[k] for k in ("accuracy", "macro_f1")}, "params": t_params,
                    "size_bytes": dir_size(tm.path / MODEL_DIR) if (tm.path / MODEL_DIR).exists()
                    else dir_size(tm.path)},
        "student": {**{k: metrics["test"][k] for k in ("accuracy", "macro_f1")}, "params": n_params,
                    "size_bytes": dir_size(out / MODEL_DIR)},
    }
    comp["accuracy_retained"] = comp["student"]["accuracy"] / max(comp["teacher"]["accuracy"], 1e-9)
    comp["agreement"] = agreement
    if lat_texts:
        comp["teacher"]["latency_ms"] = measure_latency(tm.predict_proba, lat_texts)
        comp["student"]["latency_ms"] = measure_latency(sm.predict_proba, lat_texts)
        s_ms = max(comp["student"]["latency_ms"]["median"], 1e-9)
        comp["speedup"] = comp["teacher"]["latency_ms"]["median"] / s_ms
    if onnx and lat_texts:
        import tempfile

        with tempfile.TemporaryDirectory(prefix="transferops-distill-onnx-") as tmp:
            if teacher_torch:
                comp["teacher"]["onnx_int8_ms"] = _onnx_latency(tm.path, lat_texts, Path(tmp) / "t")
            comp["student"]["onnx_int8_ms"] = _onnx_latency(out, lat_texts, Path(tmp) / "s")
    if comp["accuracy_retained"] < 0.95:
        warns.append(f"the student keeps only {comp['accuracy_retained'] * 100:.1f}% of the teacher's test "
                     "accuracy (the source text expects ~5% loss for a 10x smaller student): try more "
                     "epochs, more unlabeled texts, or more layers")
    manifest["distillation"]["comparison"] = comp
    manifest["warnings"] = warns
    manifest["timings"]["total_seconds"] = round(time.perf_counter() - t_all, 2)
    write_manifest(out, manifest)
    run_post_train_hooks(out, train_cfg)
    return DistillResult(out, read_manifest(out), warns)


__all__ = ["DistillConfig", "DistillLoss", "DistillResult", "DistillSource", "build_student", "distill",
           "distill_loss", "truncate_layers"]

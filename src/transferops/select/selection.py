"""``select``: rank candidate checkpoints on a small stratified split with cheap scores on frozen
embeddings, next to the majority and TF-IDF baselines — the source text's "run a few-shot evaluation on
a 100-example validation split, pick the top 2–3 for full fine-tuning".
"""

from __future__ import annotations

import contextlib
import json
import os
import struct
import time
from dataclasses import asdict, dataclass, field
from numbers import Integral
from pathlib import Path
from typing import Any, ClassVar, Literal

import numpy as np
import pandas as pd

from transferops._progress import say
from transferops._util import cache_dir, read_json, sha256_texts, utcnow, write_json
from transferops._validation import Constraints, Interval, Options, validate_params
from transferops.checkpoints import ResolvedCheckpoint, resolve_checkpoint
from transferops.constants import LABEL_COL, TEXT_COL
from transferops.data import ColumnMap, LabeledData, SplitConfig, load_labeled, make_splits
from transferops.errors import CheckpointNotFoundError, ConfigError, DataError
from transferops.select.precision import PRECISIONS, Precision, resolve_precision
from transferops.select.scores import (
    cv_folds,
    knn_loo_accuracy,
    logme,
    majority_cv_scores,
    probe_cv_scores,
    tfidf_cv_scores,
    tfidf_features,
)

RankBy = Literal["probe_macro_f1", "probe_accuracy", "knn_accuracy", "logme"]
RANK_BY: tuple[str, ...] = ("probe_macro_f1", "probe_accuracy", "knn_accuracy", "logme")
#: The cheap scores compared with fine-tuned results (``--finetune-top``).
SCORES: tuple[str, ...] = ("knn_accuracy", "probe_accuracy", "probe_macro_f1", "logme")
MAJORITY, TFIDF = "baseline:majority", "baseline:tfidf-logreg"


@dataclass
class SelectConfig:
    """How to draw the selection split and score the candidates."""

    n: int = 100
    seed: int = 0
    max_length: int = 128
    knn_k: int = 5
    folds: int = 5
    rank_by: RankBy = "probe_macro_f1"
    top: int = 3
    rare_classes: Literal["error", "merge"] = "error"
    batch_size: int = 32
    use_cache: bool = True
    #: the embedding pass: ``auto`` = bf16 on a CPU with native bf16, else fp32 (``select/precision.py``)
    precision: Precision = "auto"

    _parameter_constraints: ClassVar[Constraints] = {
        "n": Interval(Integral, 4, None),
        "rank_by": Options(RANK_BY),
        "rare_classes": Options("error", "merge"),
        "knn_k": Interval(Integral, 1, 100),
        "folds": Interval(Integral, 2, 20),
        "top": Interval(Integral, 1, 10),
        "max_length": Interval(Integral, 8, 8192),
        "precision": Options(PRECISIONS),
    }

    def __post_init__(self) -> None:
        validate_params(self, self._parameter_constraints, hints={"n": "the selection split needs at least 4 examples"})


@dataclass
class CandidateScore:
    """One row of the ranking: a candidate checkpoint or a baseline, scored on the same split."""

    name: str
    kind: Literal["checkpoint", "baseline"]
    knn_accuracy: float | None = None
    probe_accuracy: float | None = None
    probe_macro_f1: float | None = None
    logme: float | None = None
    params: int | None = None
    size_bytes: int | None = None
    dim: int | None = None
    embed_ms_per_example: float | None = None
    load_seconds: float | None = None
    cached: bool = False
    path: str | None = None
    rank: int | None = None
    #: precision of the embedding pass (``fp32``/``bf16``); None for baselines
    precision: str | None = None

    def score(self, key: str) -> float | None:
        return getattr(self, key)  # type: ignore[no-any-return]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class FinetuneOutcome:
    """Fine-tuned results of the top candidates and how well each cheap score predicted them."""

    runs: list[dict[str, Any]]
    correlations: dict[str, dict[str, float | None]]
    correlations_with_baseline: dict[str, dict[str, float | None]]
    note: str = ""

    @property
    def final_ranking(self) -> list[str]:
        """Candidate names by fine-tuned test macro-F1, best first."""
        return [r["name"] for r in sorted(self.runs, key=lambda r: -r["test_macro_f1"])]

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "final_ranking": self.final_ranking}


@dataclass
class SelectionResult:
    """Everything ``select`` measured; ``table()`` for people, ``to_dict()`` for machines."""

    rows: list[CandidateScore]
    recommended: list[str]
    rank_by: str
    n: int
    n_requested: int
    n_pool: int
    label_counts: dict[str, int]
    folds: int
    split: dict[str, Any]
    warnings: list[str] = field(default_factory=list)
    seconds: float = 0.0
    finetune: FinetuneOutcome | None = None

    def row(self, name: str) -> CandidateScore:
        for r in self.rows:
            if r.name == name:
                return r
        raise KeyError(name)

    @property
    def candidates(self) -> list[CandidateScore]:
        return [r for r in self.rows if r.kind == "checkpoint"]

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["rows"] = [r.to_dict() for r in self.rows]
        d["finetune"] = self.finetune.to_dict() if self.finetune else None
        return d

    def to_frame(self) -> pd.DataFrame:
        return pd.DataFrame([r.to_dict() for r in self.rows])

    def table(self) -> str:
        def f(v: float | None, fmt: str = ".3f") -> str:
            return "-" if v is None else format(v, fmt)

        lines = [f"selection split: {self.n} examples ({self.folds}-fold probe), drawn from train+validation "
                 f"({self.n_pool} rows; the test split is never used) · ranked by {self.rank_by}"
                 + "".join(f" · embeddings {p}" for p in sorted({r.precision for r in self.rows if r.precision})),
                 f"{'rank':>4} {'candidate':<26} {'kNN-LOO':>7} {'probe acc':>9} {'probe F1':>8} "
                 f"{'LogME':>7} {'params':>8} {'size':>9} {'ms/ex':>7}"]
        for r in self.rows:
            params = f"{r.params / 1e6:.1f}M" if r.params else "-"
            size = f"{r.size_bytes / 2**20:.0f} MB" if r.size_bytes else "-"
            ms = f(r.embed_ms_per_example, ".1f") + ("*" if r.cached else "")
            name = r.name if len(r.name) <= 26 else "…" + r.name[-25:]
            lines.append(f"{r.rank or '-':>4} {name:<26} {f(r.knn_accuracy):>7} {f(r.probe_accuracy):>9} "
                         f"{f(r.probe_macro_f1):>8} {f(r.logme):>7} {params:>8} {size:>9} {ms:>7}")
        if any(r.cached for r in self.rows):
            lines.append("  * embeddings and latency from the cache (measured when first embedded)")
        lines.append(f"recommended for fine-tuning: {', '.join(self.recommended) or 'none'}")
        lines += [f"warning: {w}" for w in self.warnings]
        if self.finetune:
            lines.append("fine-tuned (test split):")
            for run in self.finetune.runs:
                lines.append(f"  {run['name']:<26} macro-F1 {run['test_macro_f1']:.3f}  accuracy "
                             f"{run['test_accuracy']:.3f}  (TF-IDF baseline macro-F1 "
                             f"{run['baseline_test_macro_f1']:.3f})  → {run['path']}")
            lines.append(f"  final ranking: {' > '.join(self.finetune.final_ranking)}")
            for key, c in self.finetune.correlations.items():
                lines.append(f"  {key:<15} vs fine-tuned macro-F1: Spearman {f(c['spearman'], '+.2f')}  "
                             f"Kendall {f(c['kendall'], '+.2f')}")
            if self.finetune.note:
                lines.append(f"  note: {self.finetune.note}")
        return "\n".join(lines)


# --------------------------------------------------------------------------- selection split


def stratified_sample(keys: np.ndarray, n: int, seed: int) -> np.ndarray:
    """Indices of ``n`` rows drawn per class in proportion to its share (largest remainder), with at
    least 2 per class when the class has them, so every class can be cross-validated."""
    keys = np.asarray(keys)
    if n >= len(keys):
        return np.arange(len(keys))
    rng = np.random.default_rng(seed)
    classes, counts = np.unique(keys, return_counts=True)
    exact = counts / counts.sum() * n
    quota = np.floor(exact).astype(int)
    for i in np.argsort(-(exact - quota), kind="stable")[: n - quota.sum()]:
        quota[i] += 1
    quota = np.maximum(quota, np.minimum(counts, 2))
    while quota.sum() > n:  # the minimum of 2 overshot: take back from the largest quotas
        quota[int(np.argmax(quota))] -= 1
    out = []
    for c, q in zip(classes, quota, strict=True):
        idx = np.flatnonzero(keys == c)
        out.append(rng.choice(idx, size=int(q), replace=False))
    return np.sort(np.concatenate(out))


def _split_config(data: LabeledData, seed: int) -> SplitConfig:
    # The same choice as ``train``: a time column means temporal, a group column means group.
    if data.columns.time:
        return SplitConfig(method="temporal", seed=seed)
    if data.columns.group:
        return SplitConfig(method="group", seed=seed)
    return SplitConfig(seed=seed)


def selection_split(data: LabeledData, cfg: SelectConfig) -> tuple[list[str], list[str], int, list[str]]:
    """Texts and labels of the selection split, the pool size, and warnings.

    Drawn from train+validation of ``make_splits`` with ``train``'s seed, so the test split a later
    ``train --seed`` run evaluates on is never seen during selection.
    """
    warnings: list[str] = []
    splits = make_splits(data, _split_config(data, cfg.seed))
    pool = pd.concat([splits.train.frame, splits.validation.frame], ignore_index=True)
    labels = pool[LABEL_COL].astype(str).to_numpy()
    if len(pool) < cfg.n:
        warnings.append(f"only {len(pool)} examples outside the test split (asked for --n {cfg.n}); "
                        f"using all {len(pool)}")
    idx = stratified_sample(labels, cfg.n, cfg.seed)
    texts = pool[TEXT_COL].iloc[idx].astype(str).tolist()
    y = labels[idx].tolist()
    counts = pd.Series(y).value_counts()
    rare = sorted(str(k) for k, v in counts.items() if v < 2)
    if rare:
        if cfg.rare_classes == "error":
            raise DataError(
                f"selection split: classes with fewer than 2 examples: {', '.join(repr(r) for r in rare)} "
                f"(of {len(y)} drawn, test split excluded). Cross-validation needs 2 per class: label more "
                "examples, raise --n, or pass --merge-rare-classes to merge them into one 'other' class.")
        merged = "other(" + "+".join(rare) + ")"
        y = [merged if v in rare else v for v in y]
        warnings.append(f"merged classes with fewer than 2 examples into {merged!r}")
        if y.count(merged) < 2:
            raise DataError(f"selection split: even merged, {merged!r} has 1 example; label more examples of "
                            f"{', '.join(rare)} or drop them")
    return texts, y, len(pool), warnings


# --------------------------------------------------------------------------- embeddings


def count_params(ckpt: ResolvedCheckpoint) -> int | None:
    """Parameter count without loading the model: the zoo's number, or the safetensors header."""
    if ckpt.spec is not None:
        return ckpt.spec.params
    if ckpt.frozen is not None:  # a frozen encoder's own count (its weights are not safetensors)
        return int(ckpt.frozen.params)
    wf = ckpt.weights_file
    if wf.name == "model.safetensors":
        files = [wf]
    elif wf.name == "model.safetensors.index.json":
        files = [wf.parent / f for f in sorted(set(read_json(wf).get("weight_map", {}).values()))]
    else:
        return None  # a pickled .bin would have to be loaded; not worth it for one column
    total = 0
    for f in files:
        with open(f, "rb") as fh:
            (hlen,) = struct.unpack("<Q", fh.read(8))
            header = json.loads(fh.read(hlen))
        total += sum(int(np.prod(v["shape"])) for k, v in header.items() if k != "__metadata__")
    return total


def weights_size(ckpt: ResolvedCheckpoint) -> int:
    """Bytes of the weights, summing the shards of a sharded checkpoint."""
    wf = ckpt.weights_file
    if wf.name.endswith(".index.json"):
        shards = set(read_json(wf).get("weight_map", {}).values())
        return sum((wf.parent / f).stat().st_size for f in shards if (wf.parent / f).exists())
    return wf.stat().st_size


def embedding_cache_path(ckpt_sha: str, texts: list[str], max_length: int, precision: str = "auto") -> Path:
    """``cache_dir()/embeddings/<checkpoint sha256>-<data fingerprint>-<max_length>[-bf16].npy``
    (``precision`` as :class:`SelectConfig` takes it; fp32 entries keep their pre-issue-18 names)."""
    tail = "-bf16" if resolve_precision(precision) == "bf16" else ""
    return cache_dir() / "embeddings" / f"{ckpt_sha}-{sha256_texts(texts)}-{max_length}{tail}.npy"


@dataclass
class Embedded:
    features: np.ndarray
    ms_per_example: float
    load_seconds: float | None
    cached: bool
    precision: str = "fp32"


def embed_candidate(ckpt: ResolvedCheckpoint, texts: list[str], cfg: SelectConfig) -> Embedded:
    """Frozen mean-pooled embeddings, from the on-disk cache when this checkpoint already embedded these
    exact texts at this length and precision; latency is measured once and stored beside the array.

    One load and one pass per checkpoint: every score of the candidate is computed from these features.
    A frozen-engine checkpoint (not torch) always embeds in fp32."""
    precision = "fp32" if ckpt.frozen is not None else resolve_precision(cfg.precision)
    path = embedding_cache_path(ckpt.sha256(), texts, cfg.max_length, precision)
    meta_path = path.with_suffix(".json")
    if cfg.use_cache and path.exists() and meta_path.exists():
        try:
            meta = read_json(meta_path)
            feats = np.load(path)
            if feats.shape[0] == len(texts):
                return Embedded(feats, float(meta["ms_per_example"]), meta.get("load_seconds"), True, precision)
        except (OSError, ValueError, KeyError):
            pass  # a damaged cache entry is recomputed
    # Imported here: a warm cache never needs torch, which halves a cached run's wall time. transformers
    # is imported before the clock starts so the first candidate's load time is not the import's.
    import torch
    import transformers  # noqa: F401

    from transferops.modeling import FrozenEncoder

    enc = FrozenEncoder(str(ckpt.path), max_length=cfg.max_length, batch_size=cfg.batch_size, precision=precision)
    t0 = time.perf_counter()
    enc.load()  # timed apart from embedding: load cost and per-example latency are different budgets
    load_s = time.perf_counter() - t0
    t1 = time.perf_counter()
    feats = enc.embed(texts, desc=f"embed {ckpt.name}")
    ms = (time.perf_counter() - t1) / max(len(texts), 1) * 1000.0
    if cfg.use_cache:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_name(path.stem + f".{os.getpid()}.tmp.npy")
            np.save(tmp, feats)
            os.replace(tmp, path)
            write_json(meta_path, {"checkpoint": ckpt.name, "n": len(texts), "max_length": cfg.max_length,
                                   "ms_per_example": ms, "load_seconds": load_s, "precision": precision,
                                   "threads": torch.get_num_threads(), "created": utcnow()})
        except OSError:
            pass  # a read-only cache must not stop selection
    return Embedded(feats, ms, load_s, False, precision)


# --------------------------------------------------------------------------- select


def _resolve_all(candidates: list[str]) -> list[ResolvedCheckpoint]:
    if not candidates:
        raise ConfigError("candidates: give at least one checkpoint (e.g. minilm-l6,mpnet-base)")
    seen, out = set(), []
    for c in candidates:
        c = c.strip()
        if not c or c in seen:
            continue
        seen.add(c)
        try:
            out.append(resolve_checkpoint(c))
        except CheckpointNotFoundError as exc:
            raise CheckpointNotFoundError(f"candidate '{c}': {exc}") from exc
    return out


def _score_features(feats: np.ndarray, y: np.ndarray, folds: list[tuple[np.ndarray, np.ndarray]],
                    cfg: SelectConfig, n_classes: int) -> dict[str, float]:
    probe = probe_cv_scores(feats, y, folds, seed=cfg.seed)
    return {"knn_accuracy": knn_loo_accuracy(feats, y, k=cfg.knn_k),
            "probe_accuracy": probe["accuracy"], "probe_macro_f1": probe["macro_f1"],
            "logme": logme(feats, y, n_classes=n_classes).evidence}


def _baseline_rows(texts: list[str], y: np.ndarray, folds: list[tuple[np.ndarray, np.ndarray]], cfg: SelectConfig,
                   k: int) -> list[CandidateScore]:
    """Majority and TF-IDF rows, cached like embeddings: the TF-IDF cross-validation is the slowest part
    of a warm run. The key covers texts, labels, folds, seed, k-NN k and the baseline's settings."""
    from transferops.baselines import TfidfBaseline

    key = sha256_texts([repr(TfidfBaseline(seed=cfg.seed)), str(cfg.knn_k), "v1",
                        *(",".join(map(str, te)) for _, te in folds)], None)
    path = cache_dir() / "embeddings" / f"baselines-{sha256_texts(texts, y.tolist())}-{key[:16]}.json"
    if cfg.use_cache and path.exists():
        try:
            return [CandidateScore(**r) for r in read_json(path)]
        except (OSError, ValueError, TypeError):
            pass  # recompute a damaged entry
    maj = majority_cv_scores(y, folds)
    tf = tfidf_cv_scores(texts, y, folds, seed=cfg.seed)
    tff = tfidf_features(texts)
    rows = [CandidateScore(MAJORITY, "baseline", probe_accuracy=maj["accuracy"], probe_macro_f1=maj["macro_f1"]),
            CandidateScore(TFIDF, "baseline", knn_accuracy=knn_loo_accuracy(tff, y, k=cfg.knn_k),
                           probe_accuracy=tf["accuracy"], probe_macro_f1=tf["macro_f1"],
                           logme=logme(tff, y, n_classes=k).evidence, dim=int(tff.shape[1]))]
    if cfg.use_cache:
        with contextlib.suppress(OSError):  # a read-only cache must not stop selection
            write_json(path, [r.to_dict() for r in rows])
    return rows


def rank_rows(rows: list[CandidateScore], rank_by: str) -> list[CandidateScore]:
    """Sort best first by ``rank_by`` and set ``rank``; rows without that score go last.

    Exact ties (common for accuracies on 100 examples) are broken by LogME, then by input order.
    """

    def key(r: CandidateScore) -> tuple[int, float, float]:
        v = r.score(rank_by)
        lm = r.logme if r.logme is not None else float("-inf")
        return (0, -v, -lm) if v is not None else (1, 0.0, -lm)

    out = sorted(rows, key=key)
    for i, r in enumerate(out, start=1):
        r.rank = i
    return out


def _close_call(cands: list[CandidateScore], rank_by: str, n: int) -> list[str]:
    """Warn when the top two candidates differ by less than one binomial standard error of an accuracy
    on ``n`` examples: the split cannot tell them apart, so both deserve fine-tuning."""
    if rank_by == "logme" or len(cands) < 2:
        return []
    a, b = cands[0].score(rank_by), cands[1].score(rank_by)
    if a is None or b is None:
        return []
    se = float(np.sqrt(max(a * (1 - a), 1.0 / n) / n))
    if a - b >= se:
        return []
    return [f"{cands[0].name} and {cands[1].name} are within one standard error on {rank_by} ({a:.3f} vs "
            f"{b:.3f}, ±{se:.3f} on {n} examples): the cheap scores cannot separate them — fine-tune both, "
            "or compare their LogME"]


def select(
    data: str | Path | pd.DataFrame | LabeledData,
    candidates: list[str],
    *,
    columns: ColumnMap | None = None,
    config: SelectConfig | None = None,
    **overrides: Any,
) -> SelectionResult:
    """Rank ``candidates`` (zoo names, HF folders, cached repo ids) on a stratified selection split.

    >>> res = select("news.csv", ["minilm-l6", "mpnet-base"], n=100)     # doctest: +SKIP
    >>> print(res.table()); res.recommended                              # doctest: +SKIP
    ['mpnet-base', 'minilm-l6']
    """
    cfg = config or SelectConfig()
    if overrides:
        cfg = SelectConfig(**{**asdict(cfg), **overrides})
    t0 = time.perf_counter()
    ckpts = _resolve_all(candidates)  # fail on a bad candidate before any heavy work
    labeled = data if isinstance(data, LabeledData) else load_labeled(data, columns or ColumnMap())
    if labeled.task == "multilabel":
        raise ConfigError("select: multi-label data is not supported yet; select on one label column "
                          "(e.g. the most important label as binary), then train multi-label")
    texts, y_names, n_pool, warnings = selection_split(labeled, cfg)
    classes = sorted(set(y_names))
    y = np.asarray([classes.index(v) for v in y_names])
    folds = cv_folds(y, max_folds=cfg.folds, seed=cfg.seed)
    k = len(classes)
    say(f"selection split: {len(texts)} examples, {k} classes, {len(folds)}-fold probe")

    rows = _baseline_rows(texts, y, folds, cfg, k)
    for ck in ckpts:
        say(f"scoring {ck.name} ...")
        emb = embed_candidate(ck, texts, cfg)
        s = _score_features(emb.features, y, folds, cfg, k)
        rows.append(CandidateScore(
            ck.name, "checkpoint", params=count_params(ck), size_bytes=weights_size(ck),
            dim=int(emb.features.shape[1]), embed_ms_per_example=round(emb.ms_per_example, 3),
            load_seconds=None if emb.load_seconds is None else round(emb.load_seconds, 3),
            cached=emb.cached, path=str(ck.path), precision=emb.precision, knn_accuracy=s["knn_accuracy"],
            probe_accuracy=s["probe_accuracy"], probe_macro_f1=s["probe_macro_f1"], logme=s["logme"]))

    rows = rank_rows(rows, cfg.rank_by)
    cands = [r for r in rows if r.kind == "checkpoint"]
    recommended = [r.name for r in cands[: cfg.top]]
    tf_row = next(r for r in rows if r.name == TFIDF)
    tf_score = tf_row.score(cfg.rank_by)
    for r in cands[: cfg.top]:
        v = r.score(cfg.rank_by)
        if v is not None and tf_score is not None and v < tf_score:
            warnings.append(f"{r.name} scores below the TF-IDF baseline on {cfg.rank_by} ({v:.3f} < "
                            f"{tf_score:.3f}): fine-tuning may still win, but check it beats the baseline")
    warnings += _close_call(cands, cfg.rank_by, len(texts))
    split = {"method": _split_config(labeled, cfg.seed).method, "seed": cfg.seed,
             "source": "train+validation", "fingerprint": sha256_texts(texts, y_names)}
    return SelectionResult(rows, recommended, cfg.rank_by, len(texts), cfg.n, n_pool,
                           {c: y_names.count(c) for c in classes}, len(folds), split, warnings,
                           round(time.perf_counter() - t0, 2))


# --------------------------------------------------------------------------- fine-tune the top K


def rank_correlations(cheap: list[float], final: list[float]) -> dict[str, float | None]:
    """Spearman and Kendall between cheap scores and fine-tuned results (None when undefined)."""
    from scipy.stats import kendalltau, spearmanr

    if len(cheap) < 2 or len(set(cheap)) < 2 or len(set(final)) < 2:
        return {"spearman": None, "kendall": None, "n": len(cheap)}  # type: ignore[dict-item]
    rho = float(spearmanr(cheap, final).statistic)
    tau = float(kendalltau(cheap, final).statistic)
    return {"spearman": rho, "kendall": tau, "n": len(cheap)}


def finetune_top(result: SelectionResult, data: str | Path | pd.DataFrame, k: int, *, out: str | Path,
                 columns: ColumnMap | None = None, seed: int = 0, **train_kwargs: Any) -> FinetuneOutcome:
    """Fine-tune the top ``k`` candidates with ``transferops.train`` (same data, same seed, so the same
    test split that selection never saw) and compare the cheap scores with the fine-tuned test macro-F1.

    Correlations are reported over the fine-tuned candidates, and again with the TF-IDF baseline as one
    more point (its cheap scores vs its test macro-F1 on the same split, from the training manifest).
    """
    import transferops

    if k < 1:
        raise ConfigError(f"finetune_top: k must be >= 1, got {k}")
    cm = columns or ColumnMap()
    top = result.candidates[:k]
    out = Path(out)
    runs = []
    for r in top:
        slug = "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in Path(r.name).name) or "model"
        run_dir = out / slug
        say(f"fine-tuning {r.name} → {run_dir}")
        res = transferops.train(data, out=run_dir, checkpoint=r.path or r.name, text_column=cm.text,
                                label_column=cm.label, time_column=cm.time, group_column=cm.group,
                                seed=seed, **train_kwargs)
        t = res.manifest.metrics["test"]
        b = res.manifest.get("baseline", {}).get("tfidf_logreg", {}).get("metrics", {})
        runs.append({"name": r.name, "path": str(run_dir), "test_macro_f1": t["macro_f1"],
                     "test_accuracy": t["accuracy"],
                     "baseline_test_macro_f1": b.get("macro_f1", float("nan")),
                     "train_seconds": res.manifest["timings"]["train_seconds"],
                     "strategy": res.manifest.strategy_name,
                     **{s: r.score(s) for s in SCORES}})
    final = [run["test_macro_f1"] for run in runs]
    corr = {s: rank_correlations([run[s] for run in runs], final) for s in SCORES}
    tf = result.row(TFIDF)
    base_final = float(np.nanmean([run["baseline_test_macro_f1"] for run in runs]))
    corr_b = {}
    for s in SCORES:
        cheap = [run[s] for run in runs]
        v = tf.score(s)
        corr_b[s] = rank_correlations([*cheap, v], [*final, base_final]) if v is not None else \
            rank_correlations(cheap, final)
    note = ""
    if len(runs) < 3:
        note = (f"with {len(runs)} fine-tuned candidates a rank correlation is only ±1 (or undefined); "
                "the 'with baseline' numbers add the TF-IDF baseline as a point")
    return FinetuneOutcome(runs, corr, corr_b, note)


__all__ = ["RANK_BY", "SCORES", "CandidateScore", "FinetuneOutcome", "SelectConfig", "SelectionResult",
           "embedding_cache_path", "finetune_top", "rank_correlations", "rank_rows", "select", "selection_split",
           "stratified_sample"]

"""``advise``: should this task transfer, with which strategy, loss, split and checkpoints?

The source text's decision table (§1) keyed on labeled-data volume, checkpoint relevance, team size and
latency, extended with what the data itself shows. Each rule is a small function returning a
:class:`Finding` (or ``None`` when it does not apply), so a rule is one function plus one registry line.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from numbers import Integral, Real
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pandas as pd

from transferops._validation import Constraints, Interval, validate_params
from transferops.checkpoints import ZOO, resolve_checkpoint
from transferops.data import ColumnMap, LabeledData, load_labeled, normalise_text, read_texts
from transferops.errors import CheckpointNotFoundError

#: Thresholds, in one place (source text §1 and §2 unless marked as ours).
SIZE_BANDS = (1_000, 10_000, 100_000)
LONG_TAIL_MIN = 50          # "classes under 50 examples" → focal loss (issue)
FEW_SHOT_MIN = 10           # ours: below this per class, prefer a frozen head / few-shot
IMBALANCE_RATIO = 3.0       # ours: max/min class count above this → class weights
DUPLICATE_RATE = 0.01       # ours: over 1% exact duplicates → --dedupe
PRETRAIN_POOL = 10_000      # continued pretraining worth it above this many unlabeled texts (issue)
LATENCY_CRITICAL_MS = 50.0  # ours: a budget this tight calls for distillation / a small checkpoint
SMALL_MODEL_PARAMS = 30_000_000
TOKEN_SAMPLE = 200          # texts tokenized per checkpoint to measure length
NON_ENGLISH_SHARE = 0.10
MULTILINGUAL_TYPES = frozenset({"xlm-roberta", "xlm-roberta-xl", "xlm", "mt5", "xmod"})
UNK_RATE = 0.02             # ours: more [UNK] tokens than this means the vocabulary does not fit

def _words(s: str) -> frozenset[str]:
    return frozenset(s.split())


# Stopword heuristic: the ~15 most frequent function words per language. A text is assigned the
# language with the most hits if it has at least 3; otherwise "unknown" (too short or not listed).
STOPWORDS: dict[str, frozenset[str]] = {
    "en": _words("the and of to in is that for it with as was on are be this by have from"),
    "de": _words("der die und das ist nicht mit sich des auf für ein eine den dem zu von"),
    "fr": _words("le la les et des est une dans pour que qui pas sur du au avec ce il"),
    "es": _words("el la los las y que en del se por con una para es al lo como"),
    "it": _words("il di che la per non una sono gli della con del le è nel anche"),
    "pt": _words("o que de os as não uma para com um por da do mais se na no"),
    "nl": _words("de het een en van ik te dat die in is niet zijn met op voor"),
    "ru": _words("и в не на я что он с как а то все она так его но да ты к у же вы за бы по это"),
}
#: Scripts whose text has no spaces between words (stopwords cannot vote): the share of letters in each
#: block decides. Kana marks Japanese even beside kanji; Han alone reads as Chinese.
_SCRIPTS: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("ja", re.compile(r"[\u3040-\u30ff]")),
    ("ko", re.compile(r"[\uac00-\ud7af]")),
    ("zh", re.compile(r"[\u4e00-\u9fff]")),
)
_WORD = re.compile(r"[^\W\d_]+", re.UNICODE)
_CYRILLIC = re.compile(r"[\u0400-\u04ff]")


def detect_language(text: str) -> str:
    """Cheap stopword vote (see :data:`STOPWORDS`); "unknown" when fewer than 3 hits. Japanese, Korean and
    Chinese (no spaces between words) are told by their script first (:data:`_SCRIPTS`); Cyrillic text
    without 3 Russian stopwords is "cyrillic" (a script, the language not told)."""
    head = text[:2000]
    words = [w.lower() for w in _WORD.findall(head)]
    if not words:
        return "unknown"
    n_letters = sum(len(w) for w in words)
    for lang, pattern in _SCRIPTS:
        if len(pattern.findall(head)) >= max(2, 0.1 * n_letters):
            return lang
    hits = {lang: sum(w in sw for w in words) for lang, sw in STOPWORDS.items()}
    lang, best = max(hits.items(), key=lambda kv: kv[1])
    if best < 3 and len(_CYRILLIC.findall(head)) > 0.5 * n_letters:
        return "cyrillic"
    return lang if best >= 3 else "unknown"


@dataclass
class TokenStats:
    """Length of a text sample under one checkpoint's own tokenizer."""

    checkpoint: str
    max_length: int
    sample: int
    median_tokens: float
    p95_tokens: float
    truncated_at_max: float      # share of texts longer than the checkpoint's max length
    truncated_at_128: float      # share longer than train's default --max-length 128
    unk_rate: float
    tokens_per_word: float


@dataclass
class DataProfile:
    """What the data shows; the rules read only this (plus the user's context)."""

    n: int
    task: str
    n_classes: int
    label_counts: dict[str, int]
    min_per_class: int
    max_per_class: int
    imbalance_ratio: float
    classes_under_50: list[str]
    duplicate_rate: float
    conflicting_duplicates: int
    median_chars: float
    has_time: bool
    has_group: bool
    languages: dict[str, float]
    tokens: list[TokenStats] = field(default_factory=list)
    unlabeled: int | None = None


@dataclass
class AdviseContext:
    """What only the user knows."""

    latency_ms: float | None = None
    team_size: int | None = None
    no_relevant_checkpoint: bool = False

    _parameter_constraints: ClassVar[Constraints] = {
        "latency_ms": [None, Interval(Real, 0.0, None, closed="neither")],
        "team_size": [None, Interval(Integral, 1, None)],
    }

    def __post_init__(self) -> None:
        validate_params(self, self._parameter_constraints)


@dataclass
class Finding:
    """One row of the advice table: which rule fired, on what evidence, and what to do."""

    rule: str
    observed: str
    advice: str
    source: str = "data"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Recommendation:
    approach: str
    strategy: str
    loss: str
    class_weight: str | None
    split: str
    max_length: int
    checkpoints: list[str]
    dedupe: bool
    continued_pretraining: bool
    distill: bool
    commands: list[str]


@dataclass
class Advice:
    profile: DataProfile
    findings: list[Finding]
    recommendation: Recommendation
    warnings: list[str] = field(default_factory=list)

    @property
    def rules(self) -> list[str]:
        return [f.rule for f in self.findings]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def table(self) -> str:
        p, r = self.profile, self.recommendation
        langs = ", ".join(f"{k} {v:.0%}" for k, v in p.languages.items())
        lines = [f"data: {p.n:,} labeled · {p.task} · {p.n_classes} classes · per class {p.min_per_class}–"
                 f"{p.max_per_class} (imbalance {p.imbalance_ratio:.1f}x) · duplicates {p.duplicate_rate:.1%}"
                 f" · languages {langs or '-'}"
                 + (f" · unlabeled pool {p.unlabeled:,}" if p.unlabeled is not None else "")]
        for t in p.tokens:
            lines.append(f"tokens ({t.checkpoint}, {t.sample} sampled): median {t.median_tokens:.0f}, "
                         f"p95 {t.p95_tokens:.0f}; {t.truncated_at_128:.0%} over 128, "
                         f"{t.truncated_at_max:.0%} over its max {t.max_length}; [UNK] {t.unk_rate:.2%}")
        w_rule = max([len(f.rule) for f in self.findings] + [4])
        w_obs = min(max([len(f.observed) for f in self.findings] + [8]), 44)
        lines.append(f"{'rule':<{w_rule}}  {'observed':<{w_obs}}  advice")
        for f in self.findings:
            obs = f.observed if len(f.observed) <= w_obs else f.observed[: w_obs - 1] + "…"
            lines.append(f"{f.rule:<{w_rule}}  {obs:<{w_obs}}  {f.advice}")
        lines += [
            "recommendation:",
            f"  approach     {r.approach}",
            f"  strategy     {r.strategy}",
            f"  loss         {r.loss}" + (f" (class_weight={r.class_weight})" if r.class_weight else ""),
            f"  split        {r.split}",
            f"  max_length   {r.max_length}",
            f"  checkpoints  {', '.join(r.checkpoints) or 'none relevant bundled'}",
        ]
        lines += [f"  next: {c}" for c in r.commands]
        lines += [f"warning: {w}" for w in self.warnings]
        return "\n".join(lines)


# --------------------------------------------------------------------------- profile


def _token_stats(name: str, texts: list[str]) -> TokenStats:
    from transferops.modeling import load_tokenizer, quiet_transformers

    ck = resolve_checkpoint(name)
    tok = ck.frozen.load().tokenizer if ck.frozen is not None else load_tokenizer(ck.path)
    if ck.frozen is not None:
        max_len = ck.frozen.max_length
    else:
        max_len = ck.spec.max_length if ck.spec else int(min(getattr(tok, "model_max_length", 512) or 512,
                                                             ck.config().get("max_position_embeddings", 512)))
    with quiet_transformers():  # untruncated on purpose: "longer than the maximum" is what we measure
        ids = tok(texts, add_special_tokens=True, truncation=False)["input_ids"]
    lens = np.asarray([len(x) for x in ids], dtype=float)
    unk = tok.unk_token_id
    n_tok = sum(len(x) for x in ids)
    n_unk = sum(sum(1 for t in x if t == unk) for x in ids) if unk is not None else 0
    words = sum(len(t.split()) for t in texts)
    return TokenStats(name, max_len, len(texts), float(np.median(lens)), float(np.percentile(lens, 95)),
                      float((lens > max_len).mean()), float((lens > 128).mean()), n_unk / max(n_tok, 1),
                      (n_tok - 2 * len(texts)) / max(words, 1))


def profile_data(data: LabeledData, *, checkpoints: list[str] | None = None, unlabeled: int | None = None,
                 seed: int = 0) -> DataProfile:
    """Measure the data: class balance, duplicates, languages, and token lengths per checkpoint."""
    counts = data.label_counts()
    vals = [v for v in counts.values()]
    texts = data.texts
    norm = [normalise_text(t) for t in texts]
    seen: dict[str, Any] = {}
    dups = conflicts = 0
    for t, y in zip(norm, data.y, strict=True):
        key = str(y)
        if t in seen:
            dups += 1
            if seen[t] != key:
                conflicts += 1
        else:
            seen[t] = key
    rng = np.random.default_rng(seed)
    sample_idx = rng.choice(len(texts), size=min(TOKEN_SAMPLE, len(texts)), replace=False)
    sample = [texts[i] for i in sample_idx]
    lang_counts = Counter(detect_language(t) for t in sample)
    languages = {k: v / len(sample) for k, v in lang_counts.most_common()}
    tokens = [_token_stats(c, sample) for c in (checkpoints or [])]
    mn, mx = min(vals), max(vals)
    return DataProfile(
        n=len(data), task=data.task, n_classes=len(counts), label_counts=counts, min_per_class=mn,
        max_per_class=mx, imbalance_ratio=mx / max(mn, 1),
        classes_under_50=[k for k, v in counts.items() if v < LONG_TAIL_MIN],
        duplicate_rate=dups / len(texts), conflicting_duplicates=conflicts,
        median_chars=float(np.median([len(t) for t in texts])), has_time=bool(data.columns.time),
        has_group=bool(data.columns.group), languages=languages, tokens=tokens, unlabeled=unlabeled)


# --------------------------------------------------------------------------- rules

Rule = Callable[[DataProfile, AdviseContext], Finding | None]


def rule_size(p: DataProfile, c: AdviseContext) -> Finding:
    lo, mid, hi = SIZE_BANDS
    if p.n < lo:
        return Finding("labeled<1k", f"{p.n:,} labeled examples",
                       "use transfer learning (few-shot or fine-tuning); a model from scratch will not learn "
                       "enough", "source §1")
    if p.n < mid:
        return Finding("labeled1k-10k", f"{p.n:,} labeled examples",
                       "try both: the TF-IDF baseline and transfer; transfer usually wins", "source §1")
    if p.n < hi:
        return Finding("labeled10k-100k", f"{p.n:,} labeled examples",
                       "transfer often still wins on speed and sample efficiency", "source §1")
    return Finding("labeled>100k", f"{p.n:,} labeled examples",
                   "train from scratch if compute is cheap and you need full control; transfer if you want "
                   "faster iteration", "source §1")


def _non_english(p: DataProfile) -> float:
    return sum(v for k, v in p.languages.items() if k not in ("en", "unknown"))


def _max_unk(p: DataProfile) -> float:
    return max((t.unk_rate for t in p.tokens), default=0.0)


def rule_relevant_checkpoint(p: DataProfile, c: AdviseContext) -> Finding | None:
    share, unk = _non_english(p), _max_unk(p)
    if not (c.no_relevant_checkpoint or share > NON_ENGLISH_SHARE or unk > UNK_RATE):
        return None
    why = ("you said so" if c.no_relevant_checkpoint else
           f"{share:.0%} of texts non-English (bundled checkpoints are English)" if share > NON_ENGLISH_SHARE
           else f"{unk:.1%} of tokens are [UNK]")
    big_pool = (p.unlabeled or 0) > PRETRAIN_POOL
    multi = installed_multilingual() if share > NON_ENGLISH_SHARE and not c.no_relevant_checkpoint else []
    if multi and not big_pool:
        return Finding("no-relevant-checkpoint", why,
                       f"use a multilingual checkpoint: {', '.join(multi)} (frozen encoders: --strategy head), or "
                       "a local multilingual HF folder (XLM-R, mBERT) to fine-tune", "source §1")
    return Finding("no-relevant-checkpoint", why,
                   "self-supervised (continued) pretraining on your unlabeled data" if big_pool else
                   "train from scratch / keep the TF-IDF baseline, or find a checkpoint for this domain or "
                   "language (e.g. a multilingual one in a local HF folder)", "source §1")


def installed_multilingual(checkpoints: list[str] | None = None) -> list[str]:
    """Multilingual checkpoints on this machine: local HF folders among ``checkpoints`` whose config says so
    (XLM-R / mT5 architecture, or a vocabulary over 100k pieces, as mBERT's), then the installed frozen
    encoders (:mod:`transferops.checkpoints.frozen`). Reads configs only."""
    from transferops.checkpoints.frozen import FROZEN

    out = []
    for name in checkpoints or []:
        if name in FROZEN:
            continue
        try:
            cfg = resolve_checkpoint(name).config()
        except (CheckpointNotFoundError, OSError, ValueError):
            continue
        if cfg.get("model_type") in MULTILINGUAL_TYPES or int(cfg.get("vocab_size") or 0) >= 100_000:
            out.append(name)
    return out + [n for n, spec in FROZEN.items() if spec.multilingual and spec.locate() is not None]


def rule_team(p: DataProfile, c: AdviseContext) -> Finding | None:
    if c.team_size is None or c.team_size >= 3:
        return None
    return Finding("team<3", f"team of {c.team_size}",
                   "use an off-the-shelf pretrained checkpoint (the bundled minilm-l6) and the defaults; "
                   "skip continued pretraining unless the data demands it", "source §1")


def rule_latency(p: DataProfile, c: AdviseContext) -> Finding | None:
    if c.latency_ms is None:
        return None
    if c.latency_ms <= LATENCY_CRITICAL_MS:
        return Finding("latency-critical", f"budget {c.latency_ms:g} ms/request",
                       "distillation into a small student, or parameter-efficient fine-tuning (LoRA) on a "
                       "small checkpoint; export int8 ONNX; verify with `select` (ms/ex column)", "source §1")
    return Finding("latency-budget", f"budget {c.latency_ms:g} ms/request",
                   "any bundled checkpoint can fit; check the measured ms/ex in `select` and export "
                   "int8 ONNX",
                   "ours")


def rule_per_class(p: DataProfile, c: AdviseContext) -> Finding | None:
    if p.min_per_class >= FEW_SHOT_MIN:
        return None
    return Finding("few-per-class", f"smallest class has {p.min_per_class} examples",
                   "few-shot regime: a frozen encoder + head (strategy head) is the safe start; label more "
                   "of the small classes", "ours")


def rule_long_tail(p: DataProfile, c: AdviseContext) -> Finding | None:
    # A tail needs a head: when every class is small this is the few-shot case, not a long tail.
    if not p.classes_under_50 or p.task == "multilabel" or p.max_per_class < LONG_TAIL_MIN:
        return None
    names = ", ".join(p.classes_under_50[:4]) + ("…" if len(p.classes_under_50) > 4 else "")
    return Finding("long-tail", f"{len(p.classes_under_50)} classes under {LONG_TAIL_MIN} examples ({names})",
                   "focal loss (--loss focal) so easy majority examples do not swamp the rare classes",
                   "issue / source §2")


def rule_imbalance(p: DataProfile, c: AdviseContext) -> Finding | None:
    if p.imbalance_ratio <= IMBALANCE_RATIO:
        return None
    return Finding("imbalance", f"largest/smallest class {p.imbalance_ratio:.1f}x",
                   "weighted loss (--class-weight balanced) or oversampling; report macro-F1, not accuracy",
                   "source §2")


def rule_length(p: DataProfile, c: AdviseContext) -> Finding | None:
    worst = max(p.tokens, key=lambda t: t.p95_tokens, default=None)
    if worst is None or worst.truncated_at_128 <= 0.05:
        return None
    if worst.truncated_at_max > 0.05:
        return Finding("longer-than-checkpoint",
                       f"p95 {worst.p95_tokens:.0f} tokens > {worst.checkpoint} max {worst.max_length}",
                       f"use --max-length {worst.max_length}; the rest is truncated (put the informative "
                       "part first, or chunk long texts)", "ours")
    return Finding("truncation", f"p95 {worst.p95_tokens:.0f} tokens; {worst.truncated_at_128:.0%} over 128",
                   f"raise --max-length to {_suggest_len(p)} (cost grows with length)", "ours")


def rule_duplicates(p: DataProfile, c: AdviseContext) -> Finding | None:
    if p.duplicate_rate <= DUPLICATE_RATE and not p.conflicting_duplicates:
        return None
    extra = (f"; {p.conflicting_duplicates} with conflicting labels (label noise)"
             if p.conflicting_duplicates else "")
    return Finding("duplicates", f"{p.duplicate_rate:.1%} exact duplicates{extra}",
                   "train with --dedupe so copies cannot leak across train/test"
                   + ("; resolve the conflicting labels" if p.conflicting_duplicates else ""),
                   "source §2 (Mistake: leakage)")


def rule_split(p: DataProfile, c: AdviseContext) -> Finding:
    if p.has_time:
        return Finding("temporal", "time column present",
                       "temporal split (train on the past, test on the future) — what production sees",
                       "source §2")
    if p.has_group:
        return Finding("group", "group column present", "group split so no group is on both sides", "ours")
    return Finding("stratified", "no time or group column", "stratified split by label", "source §2")


def rule_languages(p: DataProfile, c: AdviseContext) -> Finding | None:
    langs = [k for k, v in p.languages.items() if k != "unknown" and v >= 0.02]
    if len(langs) <= 1:
        return None
    return Finding("multilingual", "languages: " + ", ".join(f"{k} {p.languages[k]:.0%}" for k in langs),
                   "evaluate per language (slice on a language column); a multilingual checkpoint may be "
                   "needed", "source §4 (slices)")


def rule_unlabeled(p: DataProfile, c: AdviseContext) -> Finding | None:
    if p.unlabeled is None:
        return None
    if p.unlabeled > PRETRAIN_POOL:
        return Finding("continued-pretraining", f"{p.unlabeled:,} unlabeled texts",
                       "continued (domain-adaptive) pretraining on the pool is worth it before fine-tuning",
                       "source §1")
    return Finding("pool-too-small", f"{p.unlabeled:,} unlabeled texts (≤ {PRETRAIN_POOL:,})",
                   "continued pretraining is not worth it yet; use the pool for active labeling instead",
                   "ours")


def rule_multilabel(p: DataProfile, c: AdviseContext) -> Finding | None:
    if p.task != "multilabel":
        return None
    return Finding("multilabel", f"{p.n_classes} labels, several per text",
                   "sigmoid outputs with binary cross-entropy and per-label thresholds tuned on validation",
                   "ours")


#: Evaluated in this order; the table lists the rules that fired.
RULES: tuple[Rule, ...] = (rule_size, rule_relevant_checkpoint, rule_team, rule_latency, rule_per_class,
                           rule_long_tail, rule_imbalance, rule_length, rule_duplicates, rule_split,
                           rule_languages, rule_unlabeled, rule_multilabel)


# --------------------------------------------------------------------------- recommendation


def _suggest_len(p: DataProfile) -> int:
    if not p.tokens:
        return 128
    p95 = max(t.p95_tokens for t in p.tokens)
    cap = min(t.max_length for t in p.tokens)
    return int(min(cap, max(64, int(np.ceil(p95 / 32.0)) * 32)))


def recommend(p: DataProfile, c: AdviseContext, findings: list[Finding], installed: list[str],
              data_arg: str = "DATA", multilingual: list[str] | None = None) -> Recommendation:
    from transferops.finetune.strategies import choose_auto

    fired = {f.rule for f in findings}
    n_train = int(p.n * 0.7)  # train's default split leaves 70% for training
    strategy, _, _ = choose_auto(n_train, 6)
    if "few-per-class" in fired:
        strategy = "head"
    elif "latency-critical" in fired:
        strategy = "lora"
    if "no-relevant-checkpoint" in fired:
        approach = ("continued pretraining on the unlabeled pool, then fine-tune"
                    if "continued-pretraining" in fired
                    else "TF-IDF baseline / from scratch; transfer is a gamble")
    elif p.n >= SIZE_BANDS[2]:
        approach = "from scratch or transfer: transfer for faster iteration"
    elif p.n >= SIZE_BANDS[0] and p.n < SIZE_BANDS[1]:
        approach = "transfer, compared against the TF-IDF baseline (try both)"
    else:
        approach = "transfer learning"
    loss = "focal" if "long-tail" in fired else "ce"
    class_weight = "balanced" if "imbalance" in fired and loss != "focal" else None
    split = "temporal" if p.has_time else "group" if p.has_group else "stratified"
    small = [n for n in installed if (ZOO[n].params if n in ZOO else 0) <= SMALL_MODEL_PARAMS]
    cands = list(installed)
    if "latency-critical" in fired or "team<3" in fired:
        cands = small + [n for n in installed if n not in small and "latency-critical" not in fired]
    if "no-relevant-checkpoint" in fired:
        cands = []
    if multilingual and _non_english(p) > NON_ENGLISH_SHARE and not c.no_relevant_checkpoint and \
            "continued-pretraining" not in fired:
        # Not (mostly) English and a multilingual checkpoint is here: transfer with it (a frozen encoder
        # trains a head only)
        from transferops.checkpoints.frozen import FROZEN

        cands = list(multilingual)
        approach = "transfer with a multilingual checkpoint (the bundled fine-tunable ones are English)"
        if cands[0] in FROZEN:
            strategy = "head"
    distill = "latency-critical" in fired and any(n not in small for n in installed)
    max_len = _suggest_len(p)
    cmds = []
    if len(cands) > 1:
        cmds.append(f"transferops select --data {data_arg} --candidates {','.join(cands)} --n 100")
    train = (f"transferops train --data {data_arg} --out runs/model --strategy {strategy} "
             f"--max-length {max_len}")
    if cands:
        train += f" --checkpoint {cands[0]}"
    if loss == "focal":
        train += " --loss focal"
    if class_weight:
        train += " --class-weight balanced"
    if "duplicates" in fired:
        train += " --dedupe"
    cmds.append(train)
    return Recommendation(approach, strategy, loss, class_weight, split, max_len, cands,
                          "duplicates" in fired, "continued-pretraining" in fired, distill, cmds)


def advise(
    data: str | Path | pd.DataFrame | LabeledData,
    *,
    columns: ColumnMap | None = None,
    unlabeled: str | Path | int | None = None,
    unlabeled_text_column: str = "text",
    latency_ms: float | None = None,
    team_size: int | None = None,
    no_relevant_checkpoint: bool = False,
    checkpoints: list[str] | None = None,
    seed: int = 0,
) -> Advice:
    """Read the data with ``train``'s loader and validation and return the advice.

    >>> a = advise("tickets.csv", unlabeled="pool.csv", latency_ms=50, team_size=2)   # doctest: +SKIP
    >>> print(a.table()); a.recommendation.strategy                                    # doctest: +SKIP
    """
    ctx = AdviseContext(latency_ms=latency_ms, team_size=team_size,
                        no_relevant_checkpoint=no_relevant_checkpoint)
    labeled = data if isinstance(data, LabeledData) else load_labeled(data, columns or ColumnMap())
    n_pool: int | None
    if unlabeled is None or isinstance(unlabeled, int):
        n_pool = unlabeled
    else:
        n_pool = len(read_texts(unlabeled, unlabeled_text_column))
    warnings: list[str] = []
    if checkpoints is None:
        installed = []
        for name in ZOO:
            try:
                resolve_checkpoint(name)
                installed.append(name)
            except CheckpointNotFoundError as exc:
                warnings.append(f"{name} not installed ({exc})")
    else:
        installed = list(checkpoints)
    prof = profile_data(labeled, checkpoints=installed, unlabeled=n_pool, seed=seed)
    findings = [f for rule in RULES if (f := rule(prof, ctx)) is not None]
    data_arg = str(data) if isinstance(data, (str, Path)) else "DATA"
    multi = installed_multilingual(installed) if _non_english(prof) > NON_ENGLISH_SHARE else []
    return Advice(prof, findings, recommend(prof, ctx, findings, installed, data_arg, multi), warnings)


__all__ = ["RULES", "Advice", "AdviseContext", "DataProfile", "Finding", "Recommendation", "advise",
           "detect_language", "installed_multilingual", "profile_data", "recommend"]

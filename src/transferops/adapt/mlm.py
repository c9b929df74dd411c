"""Continued masked-language-model pretraining on unlabeled in-domain text (domain adaptation).

Reads top to bottom: pool → chunks → (fresh MLM head warm-up) → "before" perplexities → MLM steps
→ "after" perplexities → a new Hugging Face checkpoint folder with an ``adapt.json`` lineage file.

Every step is a pure function of ``(seed, step)`` — batch order, masks, dropout — so a run killed
and resumed from ``training_state/`` continues exactly where the last save left it.
"""

from __future__ import annotations

import math
import shutil
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from importlib import resources
from numbers import Integral, Real
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch

from transferops._progress import say
from transferops._util import package_versions, read_json, sha256_texts
from transferops._validation import Constraints, Interval, validate_params
from transferops.artifacts.manifest import write_manifest
from transferops.checkpoints import resolve_checkpoint
from transferops.constants import TRAINING_STATE_DIR
from transferops.errors import ConfigError, DataError
from transferops.finetune.loop import Callback, LoopConfig, LoopState, TrainLoop, linear_warmup
from transferops.finetune.state import checkpoint_info, has_checkpoint
from transferops.modeling import load_tokenizer, quiet_transformers, set_threads

ADAPT_MANIFEST = "adapt.json"
#: Below this many texts there is not enough to hold some out and still train: an error.
MIN_TEXTS = 50
#: The source text (FAQ): self-supervised pretraining is "worth it if > 10,000 unlabeled examples".
RECOMMENDED_TEXTS = 10_000
GENERAL_SAMPLE = "general_english.txt"


@dataclass
class AdaptConfig:
    """Continued-pretraining settings; saved verbatim in ``adapt.json``."""

    checkpoint: str = field(default="minilm-l6", metadata={"help": "parent checkpoint (name or folder)"})
    steps: int = field(default=1000, metadata={"help": "optimizer steps of full MLM training"})
    lr: float = 5e-5
    warmup_ratio: float = 0.06
    weight_decay: float = 0.01
    batch_size: int = 16
    grad_accum: int = 1
    max_length: int = 128
    mlm_probability: float = field(default=0.15, metadata={"help": "fraction of tokens (words) masked"})
    whole_word: bool = field(default=True, metadata={"help": "mask all pieces of a word together"})
    heldout_fraction: float = 0.05
    max_heldout_texts: int = 200
    max_eval_windows: int = field(default=64, metadata={
        "help": "held-out windows scored before/after (64 × 128 tokens ≈ 1,200 masked tokens)"})
    head_warmup_steps: int | None = field(default=None, metadata={
        "help": "steps training only a freshly initialised MLM head before the backbone moves; "
                "None: min(100, steps // 5) when the head is new, 0 when the checkpoint has one"})
    head_lr: float = 1e-3
    forgetting_factor: float = field(default=1.5, metadata={
        "help": "warn when general-text perplexity rises by more than this factor"})
    save_every: int = 50
    eval_batch_size: int = 32
    seed: int = 0
    threads: int | None = None

    _parameter_constraints: ClassVar[Constraints] = {
        "steps": Interval(Integral, 1, None),
        "lr": Interval(Real, 0.0, 1.0, closed="right"),
        "head_lr": Interval(Real, 0.0, 1.0, closed="right"),
        "warmup_ratio": Interval(Real, 0.0, 0.5),
        "weight_decay": Interval(Real, 0.0, 1.0),
        "batch_size": Interval(Integral, 1, 4096),
        "grad_accum": Interval(Integral, 1, 1024),
        "max_length": Interval(Integral, 16, 8192),
        "mlm_probability": Interval(Real, 0.01, 0.5),
        "heldout_fraction": Interval(Real, 0.01, 0.5),
        "max_heldout_texts": Interval(Integral, 1, None),
        "max_eval_windows": Interval(Integral, 1, None),
        "head_warmup_steps": [None, Interval(Integral, 0, None)],
        "forgetting_factor": Interval(Real, 1.0, None, closed="neither"),
        "save_every": Interval(Integral, 1, None),
        "eval_batch_size": Interval(Integral, 1, None),
    }

    def __post_init__(self) -> None:
        validate_params(self, self._parameter_constraints)
        if not isinstance(self.whole_word, bool):
            raise ConfigError(f"whole_word: expected true/false, got {self.whole_word!r}")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class AdaptResult:
    """What ``adapt`` produced: the checkpoint folder and its lineage manifest."""

    path: Path
    manifest: dict[str, Any]
    warnings: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"path": str(self.path), "warnings": self.warnings, **self.manifest}

    def summary(self) -> str:
        m = self.manifest
        h, g = m["heldout"], m["general"]
        lines = [
            f"adapted checkpoint saved to {self.path} (use it as --checkpoint {self.path})",
            f"  parent {m['parent']['name']} · MLM head {m['mlm_head']} · {m['masking']} masking · "
            f"{m['steps']} steps (+{m['head_warmup_steps']} head warm-up) · "
            f"corpus {m['corpus']['texts']} texts",
            f"  held-out in-domain MLM: loss {h['before']['loss']:.3f} → {h['after']['loss']:.3f}  "
            f"perplexity {h['before']['perplexity']:.1f} → {h['after']['perplexity']:.1f}",
            f"  general-English sample: perplexity {g['before']['perplexity']:.1f} → "
            f"{g['after']['perplexity']:.1f} (x{g['ratio']:.2f}; warn above x{g['factor']:.2f})",
            f"  training {m['timings']['train_seconds']:.1f}s",
        ]
        lines += [f"  warning: {w}" for w in self.warnings]
        return "\n".join(lines)


# --------------------------------------------------------------------------- text → chunks


@dataclass
class Chunks:
    """Token-id sequences (with special tokens) and, per token, word-start and special flags."""

    ids: list[np.ndarray]
    word_start: list[np.ndarray]
    special: list[np.ndarray]

    def __len__(self) -> int:
        return len(self.ids)

    @property
    def tokens(self) -> int:
        return int(sum(len(x) for x in self.ids))


def word_starts(tokenizer: Any, ids: Sequence[int], word_ids: Sequence[int | None] | None) -> np.ndarray:
    """True where a token begins a word: from the fast tokenizer's ``word_ids`` when there are any,
    else WordPiece's ``##`` continuation marker; all-True (token-level masking) otherwise."""
    if word_ids is not None:
        out = np.ones(len(ids), dtype=bool)
        for i in range(1, len(ids)):
            out[i] = word_ids[i] is None or word_ids[i] != word_ids[i - 1]
        return out
    toks = tokenizer.convert_ids_to_tokens(list(ids))
    return np.asarray([not str(t).startswith("##") for t in toks], dtype=bool)


def masking_mode(tokenizer: Any, whole_word: bool) -> str:
    if not whole_word:
        return "token"
    if getattr(tokenizer, "is_fast", False):
        return "whole_word"
    vocab = tokenizer.get_vocab() if hasattr(tokenizer, "get_vocab") else {}
    return "whole_word" if any(k.startswith("##") for k in list(vocab)[:5000]) else "token"


def special_template(tokenizer: Any) -> tuple[list[int], list[int]]:
    """The special tokens a single sequence gets before and after its body ([CLS] … [SEP], <s> … </s>),
    read off by encoding one word with and without them (works across tokenizer classes)."""
    body = list(tokenizer("hello", add_special_tokens=False)["input_ids"])
    full = list(tokenizer("hello", add_special_tokens=True)["input_ids"])
    for i in range(len(full) - len(body) + 1):
        if full[i:i + len(body)] == body:
            return full[:i], full[i + len(body):]
    return [], []


def make_chunks(tokenizer: Any, texts: Sequence[str], max_length: int, *, mode: str = "whole_word",
                min_tokens: int = 8) -> Chunks:
    """Split every text into windows of ``max_length`` tokens (special tokens included), so long
    articles are used in full rather than truncated."""
    prefix, suffix = special_template(tokenizer)
    room = max_length - len(prefix) - len(suffix)
    ids_out: list[np.ndarray] = []
    ws_out: list[np.ndarray] = []
    sp_out: list[np.ndarray] = []
    with quiet_transformers(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        enc = tokenizer(list(texts), add_special_tokens=False, truncation=False)
    for i, ids in enumerate(enc["input_ids"]):
        wids = enc.word_ids(i) if (mode == "whole_word" and getattr(enc, "is_fast", False)) else None
        starts = word_starts(tokenizer, ids, wids) if mode == "whole_word" else np.ones(len(ids), dtype=bool)
        for s in range(0, len(ids), room):
            piece = list(ids[s:s + room])
            if len(piece) < min_tokens and s > 0:
                continue  # a short tail of a long text adds little
            full = [*prefix, *piece, *suffix]
            special = np.zeros(len(full), dtype=bool)
            special[:len(prefix)] = True
            special[len(full) - len(suffix):] = True
            ws = np.ones(len(full), dtype=bool)
            body = np.flatnonzero(~special)
            ws[body] = starts[s:s + room]
            if len(body):
                ws[body[0]] = True  # a window may open mid-word: its first piece starts a (part-)word
            ids_out.append(np.asarray(full, dtype=np.int64))
            ws_out.append(ws)
            sp_out.append(special)
    return Chunks(ids_out, ws_out, sp_out)


def mask_tokens(ids: np.ndarray, word_start: np.ndarray, special: np.ndarray, rng: np.random.Generator, *,
                probability: float, mask_id: int, vocab_size: int) -> tuple[np.ndarray, np.ndarray]:
    """BERT masking on one sequence: pick words with ``probability`` (all their pieces go together),
    then 80% → [MASK], 10% → a random token, 10% unchanged. At least one word is always picked.
    Returns (input_ids, labels) with labels -100 where nothing is predicted."""
    word = np.cumsum(word_start) - 1
    n_words = int(word[-1]) + 1 if len(word) else 0
    chosen = rng.random(n_words) < probability
    eligible = np.zeros(n_words, dtype=bool)
    eligible[word[~special]] = True
    chosen &= eligible
    if not chosen.any() and eligible.any():
        chosen[rng.choice(np.flatnonzero(eligible))] = True
    masked = chosen[word] & ~special
    labels = np.where(masked, ids, -100)
    inp = ids.copy()
    r = rng.random(len(ids))
    inp[masked & (r < 0.8)] = mask_id
    rand = masked & (r >= 0.8) & (r < 0.9)
    inp[rand] = rng.integers(0, vocab_size, size=int(rand.sum()))
    return inp, labels


def collate(pairs: Sequence[tuple[np.ndarray, np.ndarray]], pad_id: int) -> dict[str, torch.Tensor]:
    n = max(len(p[0]) for p in pairs)
    ids = torch.full((len(pairs), n), pad_id, dtype=torch.long)
    labels = torch.full((len(pairs), n), -100, dtype=torch.long)
    att = torch.zeros((len(pairs), n), dtype=torch.long)
    for i, (x, y) in enumerate(pairs):
        ids[i, :len(x)] = torch.as_tensor(x)
        labels[i, :len(y)] = torch.as_tensor(y)
        att[i, :len(x)] = 1
    return {"input_ids": ids, "attention_mask": att, "labels": labels}


# --------------------------------------------------------------------------- model pieces


def _head_module(model: torch.nn.Module) -> torch.nn.Module | None:
    """The MLM prediction head applied to hidden states (BERT: ``cls``, RoBERTa/MPNet: ``lm_head``)."""
    for name in ("cls", "lm_head"):
        mod = getattr(model, name, None)
        if isinstance(mod, torch.nn.Module):
            return mod
    return None


def mlm_loss(model: Any, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, int]:
    """Mean cross-entropy over masked tokens, computing vocabulary logits only where a token is masked
    (about 15% of positions: most of an MLM step's cost is the vocabulary projection)."""
    labels = batch["labels"]
    sel = labels != -100
    n = int(sel.sum())
    head = _head_module(model)
    if head is None:  # unknown head layout: let the model compute its own loss
        out = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"], labels=labels)
        return out.loss, n
    hidden = model.base_model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]
                              ).last_hidden_state
    logits = head(hidden[sel])
    return torch.nn.functional.cross_entropy(logits.float(), labels[sel]), n


def evaluate_mlm(model: torch.nn.Module, batches: list[dict[str, torch.Tensor]]) -> dict[str, float]:
    """Loss per masked token and perplexity (exp of it) over fixed, pre-masked batches."""
    was = model.training
    model.eval()
    total, count = 0.0, 0
    device = next(model.parameters()).device
    with torch.inference_mode():
        for b in batches:
            loss, n = mlm_loss(model, {k: v.to(device) for k, v in b.items()})
            total += float(loss) * n
            count += n
    if was:
        model.train()
    mean = total / max(count, 1)
    return {"loss": round(mean, 5), "perplexity": round(float(math.exp(min(mean, 50.0))), 3), "tokens": count}


def fixed_batches(chunks: Chunks, tokenizer: Any, cfg: AdaptConfig, seed: int, *, repeats: int = 1
                  ) -> list[dict[str, torch.Tensor]]:
    """Pre-masked evaluation batches: the same masks before and after training, so the numbers compare.
    ``repeats`` masks each sequence several times (a small sample then scores more tokens)."""
    rng = np.random.default_rng([seed, 7919])
    pairs = [mask_tokens(chunks.ids[i], chunks.word_start[i], chunks.special[i], rng,
                         probability=cfg.mlm_probability, mask_id=tokenizer.mask_token_id,
                         vocab_size=len(tokenizer)) for _ in range(repeats) for i in range(len(chunks))]
    pad = tokenizer.pad_token_id or 0
    return [collate(pairs[s:s + cfg.eval_batch_size], pad) for s in range(0, len(pairs), cfg.eval_batch_size)]


def general_sample() -> list[str]:
    """A few paragraphs of plain general English shipped with the package (the forgetting guard)."""
    text = resources.files("transferops.adapt").joinpath(GENERAL_SAMPLE).read_text(encoding="utf-8")
    return [p.strip() for p in text.split("\n\n") if p.strip()]


def _load_mlm(path: Path) -> tuple[Any, bool]:
    """The checkpoint as a masked LM; True when its MLM head had to be freshly initialised."""
    from transformers import AutoModelForMaskedLM

    with quiet_transformers():
        try:
            model, info = AutoModelForMaskedLM.from_pretrained(str(path), local_files_only=True,
                                                               output_loading_info=True)
        except ValueError as exc:
            raise ConfigError(f"checkpoint: {path} has no masked-language-model architecture in transformers "
                              f"({exc}); continued pretraining needs a BERT/RoBERTa/MPNet-style encoder"
                              ) from exc
    prefix = model.base_model_prefix
    missing = [k for k in info.get("missing_keys", []) if not k.startswith(prefix + ".")]
    return model, bool(missing)


def _head_params(model: Any) -> list[torch.nn.Parameter]:
    """Parameters of the MLM head that are not shared with the backbone (the decoder is usually
    tied to the input embeddings, which must not move during the head warm-up)."""
    head = _head_module(model)
    base_ids = {id(p) for p in model.base_model.parameters()}
    mods = [head] if head is not None else [model]
    return [p for m in mods for p in m.parameters() if id(p) not in base_ids]


def _carry_parent_weights(out: Path, parent: Path, model: Any) -> list[str]:
    """Copy backbone weights the MLM model does not hold (BERT's pooler) from the parent into the saved
    file, so loading the adapted folder as a classifier loses nothing the parent had."""
    from safetensors import safe_open
    from safetensors.torch import load_file, save_file
    from transformers import AutoModel

    pfile = parent / "model.safetensors"
    ofile = out / "model.safetensors"
    if not pfile.exists() or not ofile.exists():
        return []
    with quiet_transformers():
        base_names = set(AutoModel.from_config(model.config).state_dict())
    prefix = model.base_model_prefix
    saved = load_file(str(ofile))
    added: list[str] = []
    with safe_open(str(pfile), "pt") as fh:
        for k in fh.keys():  # noqa: SIM118 (safe_open is not a mapping)
            s = k[len(prefix) + 1:] if k.startswith(prefix + ".") else k
            if s in base_names and f"{prefix}.{s}" not in saved and s not in saved:
                saved[f"{prefix}.{s}"] = fh.get_tensor(k).contiguous()
                added.append(s)
    if added:
        save_file(saved, str(ofile), metadata={"format": "pt"})
    return added


# --------------------------------------------------------------------------- loss + data source


class MaskedLMLoss:
    """The objective of continued pretraining over the shared loop: :func:`mlm_loss`, counting tokens."""

    def __init__(self) -> None:
        self.tokens_seen = 0

    def loss(self, module: torch.nn.Module, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, int]:
        loss, _ = mlm_loss(module, batch)
        self.tokens_seen += int(batch["attention_mask"].sum())
        return loss, int(batch["input_ids"].shape[0])

    def state_dict(self) -> dict[str, Any]:
        return {"tokens_seen": self.tokens_seen}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.tokens_seen = int(state["tokens_seen"])


class MaskedWindows:
    """All micro-batches of a run as one pass. Micro-batch ``k = step * grad_accum + micro`` is a pure
    function of ``(seed, k)``: windows from a per-epoch permutation (``divmod(k, windows // batch_size)``),
    masks from ``default_rng([seed, step, micro, 2])``; so a resume can start at any step."""

    def __init__(self, chunks: Chunks, tokenizer: Any, *, steps: int, batch_size: int, grad_accum: int,
                 probability: float, seed: int) -> None:
        self.chunks, self.steps, self.batch_size, self.grad_accum = chunks, steps, batch_size, grad_accum
        self.probability, self.seed = probability, seed
        self.mask_id, self.vocab, self.pad = tokenizer.mask_token_id, len(tokenizer), tokenizer.pad_token_id or 0
        self.per_epoch = len(chunks) // batch_size

    def __len__(self) -> int:
        return self.steps * self.grad_accum

    def batches(self, epoch: int, start: int = 0) -> Iterator[dict[str, torch.Tensor]]:
        orders: dict[int, np.ndarray] = {}
        for k in range(start, len(self)):
            step, micro = divmod(k, self.grad_accum)
            ep, pos = divmod(k, self.per_epoch)
            if ep not in orders:
                orders = {ep: np.random.default_rng([self.seed, ep]).permutation(len(self.chunks))}
            idx = orders[ep][pos * self.batch_size:(pos + 1) * self.batch_size]
            rng = np.random.default_rng([self.seed, step, micro, 2])
            ch = self.chunks
            yield collate([mask_tokens(ch.ids[i], ch.word_start[i], ch.special[i], rng, probability=self.probability,
                                       mask_id=self.mask_id, vocab_size=self.vocab) for i in idx], self.pad)


class HeadWarmup(Callback):
    """Per step: only the (fresh) MLM head trains for the first ``steps`` steps, then the whole model; the
    "before" perplexities are measured when the backbone starts to move; dropout is re-seeded from
    ``(seed, step)`` so a resumed run draws the same masks as an uninterrupted one."""

    def __init__(self, model: Any, steps: int, *, seed: int, heldout: list[dict[str, torch.Tensor]],
                 general: list[dict[str, torch.Tensor]], run: dict[str, Any]) -> None:
        self.model, self.steps, self.seed = model, steps, seed
        self.heldout, self.general, self.run = heldout, general, run
        self.head_ids = {id(p) for p in _head_params(model)}
        self.before_heldout: dict[str, float] | None = None
        self.before_general: dict[str, float] | None = None

    def on_step_begin(self, state: LoopState) -> None:
        for p in self.model.parameters():
            p.requires_grad = state.step >= self.steps or id(p) in self.head_ids
        if state.step == self.steps and self.before_heldout is None:
            self.before_heldout = evaluate_mlm(self.model, self.heldout)
            self.before_general = evaluate_mlm(self.model, self.general)
            if self.steps:
                say(f"after head warm-up: held-out perplexity {self.before_heldout['perplexity']:.1f}")
        torch.manual_seed(self.seed * 1_000_003 + state.step)  # dropout, reproducible across resumes

    def on_log(self, state: LoopState, record: dict[str, Any]) -> dict[str, Any]:
        return {"step": record["step"], "phase": "head" if state.step <= self.steps else "full", **record}

    def state_dict(self) -> dict[str, Any]:
        return {"before_heldout": self.before_heldout, "before_general": self.before_general, **self.run}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.before_heldout, self.before_general = state.get("before_heldout"), state.get("before_general")


# --------------------------------------------------------------------------- the run

#: Settings that do not change the result: a resume may differ in these.
_RESUME_FREE = ("threads", "save_every", "eval_batch_size")


def _check_same_run(saved: dict[str, Any], saved_fp: str, cfg: AdaptConfig, fp: str, out: Path) -> None:
    """A resume must continue the same run: same settings (bar threads/saving) and the same pool."""
    now = cfg.to_dict()
    diff = [k for k in now if k not in _RESUME_FREE and k in saved and saved[k] != now[k]]
    if diff:
        k = diff[0]
        raise ConfigError(f"{k}: {out} was started with {k}={saved[k]!r}, not {now[k]!r}; resume with the same "
                          "settings, or train into a new --out")
    if saved_fp and saved_fp != fp:
        raise ConfigError(f"unlabeled: {out} was started on a different pool (corpus fingerprint differs); "
                          "resume with the same texts, or train into a new --out")



def _read_pool(unlabeled: Any, text_column: str) -> tuple[list[str], str]:
    import pandas as pd

    from transferops.data import read_texts

    if isinstance(unlabeled, (str, Path)):
        return read_texts(unlabeled, text_column), str(unlabeled)
    if isinstance(unlabeled, pd.DataFrame):
        if text_column not in unlabeled.columns:
            raise DataError(f"unlabeled: no column '{text_column}' (columns: {list(unlabeled.columns)}); "
                            "pass text_column=")
        vals = unlabeled[text_column].tolist()
    else:
        vals = list(unlabeled)
    texts = [str(v) for v in vals if v is not None and not (isinstance(v, float) and np.isnan(v))
             and str(v).strip()]
    return texts, "<in-memory>"


def check_pool(texts: Sequence[str]) -> list[str]:
    """Errors for an empty or tiny pool (saying how much is needed); warnings for a small one."""
    if len(texts) == 0:
        raise DataError(f"unlabeled: the pool is empty; continued pretraining needs at least {MIN_TEXTS} "
                        f"non-empty texts (the source text recommends more than {RECOMMENDED_TEXTS:,})")
    if len(texts) < MIN_TEXTS:
        raise DataError(f"unlabeled: only {len(texts)} non-empty texts; continued pretraining needs at least "
                        f"{MIN_TEXTS} (some are held out to measure perplexity) and pays off above about "
                        f"{RECOMMENDED_TEXTS:,}")
    if len(texts) < RECOMMENDED_TEXTS:
        return [f"small pool: {len(texts):,} texts; the source text finds self-supervised pretraining "
                f"worth it above {RECOMMENDED_TEXTS:,} unlabeled examples — compare against the "
                "unadapted checkpoint before keeping this one"]
    return []


def adapt(unlabeled: Any, *, out: str | Path, text_column: str = "text", config: AdaptConfig | None = None,
          resume: bool = False, **overrides: Any) -> AdaptResult:
    """Continue MLM pretraining of a checkpoint on unlabeled texts; save a new checkpoint folder.

    >>> res = adapt("pool.csv", out="ckpt/minilm-news", checkpoint="minilm-l6", steps=2000)  # doctest: +SKIP
    >>> transferops.train("news.csv", out="runs/news", checkpoint="ckpt/minilm-news")       # doctest: +SKIP
    """
    cfg = config or AdaptConfig()
    if overrides:
        cfg = AdaptConfig(**{**cfg.to_dict(), **overrides})
    set_threads(cfg.threads)
    out = Path(out)
    state_dir = out / TRAINING_STATE_DIR
    if (out / ADAPT_MANIFEST).exists() and not resume:
        raise ConfigError(f"out: {out} already holds an adapted checkpoint; choose another --out, or "
                          "delete it")
    if has_checkpoint(state_dir) and not resume:
        raise ConfigError(f"out: {out} holds an interrupted run; pass --resume to continue it, or delete it")
    texts, source = _read_pool(unlabeled, text_column)
    fingerprint = sha256_texts(texts)
    if (out / ADAPT_MANIFEST).exists():
        m = read_json(out / ADAPT_MANIFEST)
        _check_same_run(m["config"], m["corpus"]["fingerprint"], cfg, fingerprint, out)
        say(f"{out} is already complete; nothing to resume")
        return AdaptResult(out, m, list(m.get("warnings", [])))
    warns = check_pool(texts)
    parent = resolve_checkpoint(cfg.checkpoint)
    tok = load_tokenizer(parent.path)
    if tok.mask_token_id is None:
        raise ConfigError(f"checkpoint: the tokenizer of {parent.name} has no mask token; it cannot do MLM")
    torch.manual_seed(cfg.seed)  # a freshly initialised MLM head must be the same on every run
    model, head_new = _load_mlm(parent.path)
    if head_new:
        msg = (f"{parent.name} ships no masked-LM head weights: a fresh head was initialised (its first "
               "steps train the head alone, then the whole model)")
        say(msg)
        warns.append(msg)
    hw = cfg.head_warmup_steps if cfg.head_warmup_steps is not None else (
        min(100, cfg.steps // 5) if head_new else 0)
    mode = masking_mode(tok, cfg.whole_word)
    if cfg.whole_word and mode == "token":
        warns.append("the tokenizer gives no word boundaries: masking single tokens instead of whole words")

    # Held-out texts: the in-domain perplexity before/after is measured on texts never trained on.
    rng = np.random.default_rng([cfg.seed, 1])
    perm = rng.permutation(len(texts))
    n_hold = int(min(cfg.max_heldout_texts, max(2, round(cfg.heldout_fraction * len(texts)))))
    hold_texts = [texts[i] for i in perm[:n_hold]]
    train_texts = [texts[i] for i in perm[n_hold:]]
    train_chunks = make_chunks(tok, train_texts, cfg.max_length, mode=mode)
    hold_chunks = make_chunks(tok, hold_texts, cfg.max_length, mode=mode)
    keep = np.random.default_rng([cfg.seed, 3]).permutation(len(hold_chunks))[:cfg.max_eval_windows]
    hold_chunks = Chunks([hold_chunks.ids[i] for i in keep], [hold_chunks.word_start[i] for i in keep],
                         [hold_chunks.special[i] for i in keep])
    hold_batches = fixed_batches(hold_chunks, tok, cfg, cfg.seed)
    general_batches = fixed_batches(make_chunks(tok, general_sample(), cfg.max_length, mode=mode), tok, cfg, 0,
                                repeats=4)
    if len(train_chunks) < cfg.batch_size:
        raise DataError(f"unlabeled: {len(train_chunks)} training windows of {cfg.max_length} tokens is "
                        f"fewer than one batch ({cfg.batch_size}); add texts (at least {MIN_TEXTS}) or lower "
                        "--batch-size")
    per_epoch = len(train_chunks) // cfg.batch_size
    total = hw + cfg.steps
    if cfg.steps * cfg.grad_accum > 20 * per_epoch:
        warns.append(f"{cfg.steps} steps make {cfg.steps * cfg.grad_accum / per_epoch:.0f} passes over a "
                     f"pool of {len(train_chunks)} windows: the model may memorise it; add text or lower "
                     "--steps")

    decay = [p for n, p in model.named_parameters() if not (n.endswith("bias") or "LayerNorm" in n
                                                            or "layer_norm" in n)]
    decay_ids = {id(p) for p in decay}
    rest = [p for p in model.parameters() if id(p) not in decay_ids]
    warm = int(cfg.warmup_ratio * cfg.steps)
    head_mult = cfg.head_lr / cfg.lr

    def lr_at(step: int) -> float:  # head warm-up at head_lr, then warm-up + linear decay of the full model
        return head_mult if step < hw else linear_warmup(step - hw, warm, cfg.steps)

    phases = HeadWarmup(model, hw, seed=cfg.seed, heldout=hold_batches, general=general_batches,
                        run={"config": cfg.to_dict(), "fingerprint": fingerprint})
    objective = MaskedLMLoss()
    data = MaskedWindows(train_chunks, tok, steps=total, batch_size=cfg.batch_size, grad_accum=cfg.grad_accum,
                         probability=cfg.mlm_probability, seed=cfg.seed)
    loop = TrainLoop(LoopConfig(lr=cfg.lr, epochs=1, grad_accum=cfg.grad_accum, clip_grad_norm=1.0,
                                save_epochs=False, save_every=cfg.save_every, log_every=max(1, total // 20),
                                desc="adapt (MLM)"), callbacks=[phases])
    if resume and has_checkpoint(state_dir):
        saved = checkpoint_info(state_dir)
        _check_same_run(saved.get("config", {}), saved.get("fingerprint", ""), cfg, fingerprint, out)
    fit = loop.run(model, objective, data, lr_lambda=lr_at, state_dir=state_dir, resume=resume,
                   param_groups=[{"params": decay, "weight_decay": cfg.weight_decay},
                                 {"params": rest, "weight_decay": 0.0}])
    history, train_seconds, tokens_seen = fit.history, fit.train_seconds, objective.tokens_seen
    before_h, before_g = phases.before_heldout, phases.before_general
    if before_h is None or before_g is None:  # steps == 0 after warm-up cannot happen (steps >= 1)
        before_h, before_g = evaluate_mlm(model, hold_batches), evaluate_mlm(model, general_batches)
    after_h, after_g = evaluate_mlm(model, hold_batches), evaluate_mlm(model, general_batches)
    ratio = after_g["perplexity"] / max(before_g["perplexity"], 1e-9)
    if ratio > cfg.forgetting_factor:
        warns.append(f"catastrophic-forgetting risk (source text §5.2): general-English perplexity rose "
                     f"x{ratio:.2f} ({before_g['perplexity']:.1f} → {after_g['perplexity']:.1f}), above "
                     f"x{cfg.forgetting_factor}; lower --lr or --steps, or mix general text into the pool")
    if after_h["loss"] >= before_h["loss"]:
        warns.append(f"held-out MLM loss did not fall ({before_h['loss']:.3f} → {after_h['loss']:.3f}); "
                     "the adapted checkpoint is unlikely to help — check --lr and the pool")

    model.cpu().eval()
    out.mkdir(parents=True, exist_ok=True)
    with quiet_transformers():
        model.save_pretrained(str(out), safe_serialization=True)
    tok.save_pretrained(str(out))
    carried = _carry_parent_weights(out, parent.path, model)

    lineage: list[dict[str, Any]] = []
    if (parent.path / ADAPT_MANIFEST).exists():
        pm = read_json(parent.path / ADAPT_MANIFEST)
        lineage = [*pm.get("lineage", []),
                   {"parent": pm["parent"], "corpus": pm["corpus"], "steps": pm["steps"]}]
    manifest: dict[str, Any] = {
        "kind": "adapted_checkpoint",
        "parent": {"name": parent.name, "path": str(parent.path), "source": parent.source,
                   "sha256": parent.sha256()},
        "lineage": lineage,
        "corpus": {"source": source, "fingerprint": fingerprint, "texts": len(texts),
                   "train_texts": len(train_texts), "heldout_texts": len(hold_texts),
                   "train_windows": len(train_chunks), "train_tokens": train_chunks.tokens},
        "objective": "masked_lm",
        "mlm_head": "initialised" if head_new else "pretrained",
        "masking": mode,
        "steps": cfg.steps,
        "head_warmup_steps": hw,
        "tokens_seen": tokens_seen,
        "config": cfg.to_dict(),
        "heldout": {"before": before_h, "after": after_h},
        "general": {"before": before_g, "after": after_g, "ratio": round(ratio, 4),
                    "factor": cfg.forgetting_factor, "warned": ratio > cfg.forgetting_factor},
        "carried_from_parent": carried,
        "history": history,
        "timings": {"train_seconds": round(train_seconds, 2),
                    "tokens_per_second": round(tokens_seen / train_seconds, 1) if train_seconds else 0.0},
        "versions": package_versions(),
        "warnings": warns,
    }
    written = write_manifest(out, manifest, filename=ADAPT_MANIFEST)
    shutil.rmtree(state_dir, ignore_errors=True)
    return AdaptResult(out, written, warns)


__all__ = ["ADAPT_MANIFEST", "MIN_TEXTS", "AdaptConfig", "AdaptResult", "adapt", "check_pool",
           "evaluate_mlm", "general_sample", "make_chunks", "mask_tokens"]

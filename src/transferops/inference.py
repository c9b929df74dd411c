"""THE forward pass: texts in, logits and a mean-pooled embedding out, in length-sorted batches.

Every path that runs an encoder over texts goes through here: ``TransferOpsModel`` (``logits``,
``embed``, ``infer``), the server's runners (:mod:`transferops.deploy.runtime`), the ONNX export
wrapper and its PyTorch reference (:mod:`transferops.deploy.onnx_export`), the ONNX session
(:mod:`transferops.deploy.onnx_runtime`), the trainer's frozen-feature cache, the frozen encoder
used by selection, leakage checks and drift sketches (:class:`transferops.modeling.FrozenEncoder`).

* :func:`sorted_batches` — the batching: longest texts first (less padding), results back in the
  caller's order. Runtime-agnostic (the ONNX session uses it with numpy feeds).
* :func:`mean_pool` — the one definition of the sentence embedding: the last hidden state averaged
  over the attention mask.
* :func:`encoder_outputs` — one batch through a torch module: ``(logits, embedding)``; a bare encoder
  (``AutoModel``) gives no logits, a classifier gives both from one pass.
* :func:`forward` — the two above over a list of texts; :func:`batched_forward` keeps the older
  one-output signature.
* :func:`with_embedding` / :func:`probe_graph` — the torch modules the ONNX exporter traces; they call
  the same :func:`mean_pool`.

numpy only at import; torch is imported on first use (the ONNX path never needs it).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Literal

import numpy as np

Output = Literal["logits", "embedding", "both", "first_token"]
#: Input names an exported graph takes, in the order it takes them.
INPUT_NAMES = ("input_ids", "attention_mask", "token_type_ids")


def length_order(texts: Sequence[str]) -> np.ndarray:
    """Indices that sort ``texts`` longest first (stable: equal sizes keep their order); the size of an
    input is its modality's (:meth:`transferops.modality.Modality.size`)."""
    from transferops.modality.text import TEXT

    return np.argsort([-TEXT.size(t) for t in texts], kind="stable")


def sorted_batches(texts: Sequence[str], batch_size: int,
                   run: Callable[[list[str]], tuple[np.ndarray, ...]], *, progress: Any = None
                   ) -> tuple[np.ndarray, ...]:
    """Call ``run`` on length-sorted batches of ``texts``; each of its outputs is concatenated and
    put back in the original order. ``progress`` (a bar) is advanced by the batch sizes."""
    order = length_order(texts)
    parts: list[tuple[np.ndarray, ...]] = []
    for s in range(0, len(texts), batch_size):
        idx = order[s:s + batch_size]
        parts.append(run([texts[i] for i in idx]))
        if progress is not None:
            progress.update(len(idx))
    outs = []
    for j in range(len(parts[0])):
        cat = np.concatenate([p[j] for p in parts], axis=0)
        res = np.empty_like(cat)
        res[order] = cat
        outs.append(res)
    return tuple(outs)


def mean_pool(hidden: Any, attention_mask: Any) -> Any:
    """Mean of ``hidden`` (batch, seq, dim) over the positions where ``attention_mask`` is 1."""
    mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
    return (hidden * mask).sum(1) / mask.sum(1).clamp(min=1.0)


def input_names(tokenizer: Any) -> list[str]:
    """The model inputs the tokenizer produces, among :data:`INPUT_NAMES`, in that order."""
    names = [n for n in getattr(tokenizer, "model_input_names", ["input_ids", "attention_mask"])
             if n in INPUT_NAMES]
    return sorted(names, key=INPUT_NAMES.index)


def encode(tokenizer: Any, texts: Sequence[str], max_length: int, *, return_tensors: str = "pt") -> Any:
    """The one tokenisation of inference (the text modality's: truncate to ``max_length``, pad to the
    longest in the batch)."""
    from transferops.modality.text import TEXT

    return TEXT.encode(tokenizer, texts, max_length=max_length, return_tensors=return_tensors)


def encoder_outputs(model: Any, enc: dict[str, Any], output: Output = "both") -> tuple[Any, Any]:
    """One encoded batch through ``model``: ``(logits, embedding)`` as torch tensors (``None`` for an
    output not asked for, or logits of a bare encoder). ``first_token`` gives the last layer's first
    token, shape (batch, 1, dim), as the embedding."""
    if output == "logits":
        return model(**enc).logits, None
    out = model(**enc, output_hidden_states=True) if output == "both" else model(**enc)
    logits = getattr(out, "logits", None)
    hidden = getattr(out, "last_hidden_state", None)
    if hidden is None:  # a classifier: its encoder's last layer is the last of its hidden states
        if getattr(out, "hidden_states", None) is None:
            out = model(**enc, output_hidden_states=True)
            logits = out.logits
        hidden = out.hidden_states[-1]
    n_real = enc["attention_mask"].shape[1]
    if hidden.shape[1] > n_real:  # prompt tuning prepends virtual tokens: pool the real tokens only
        hidden = hidden[:, hidden.shape[1] - n_real:, :]
    if output == "first_token":
        return logits, hidden[:, :1, :]
    return logits, mean_pool(hidden, enc["attention_mask"])


def forward(model: Any, tokenizer: Any, texts: Sequence[str], *, max_length: int, batch_size: int = 64,
            output: Output = "both", desc: str | None = "predict") -> tuple[np.ndarray, np.ndarray]:
    """``model`` over ``texts`` in length-sorted batches: ``(logits, embedding)`` in the original order
    (an output not asked for is an empty array). The model is put in eval mode for the pass and
    restored after."""
    import torch

    from transferops._progress import bar

    if len(texts) == 0:
        return np.zeros((0, 0), np.float32), np.zeros((0, 0), np.float32)
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()

    def run(batch: list[str]) -> tuple[np.ndarray, np.ndarray]:
        enc = {k: v.to(device) for k, v in encode(tokenizer, batch, max_length).items()}
        logits, emb = encoder_outputs(model, enc, output)
        n = len(batch)
        return (logits.float().cpu().numpy() if logits is not None else np.zeros((n, 0), np.float32),
                emb.float().cpu().numpy() if emb is not None else np.zeros((n, 0), np.float32))

    try:
        with torch.inference_mode():
            if desc is None:
                logits, emb = sorted_batches(texts, batch_size, run)
            else:
                with bar(desc=desc, total=len(texts), unit="text") as pb:
                    logits, emb = sorted_batches(texts, batch_size, run, progress=pb)
    finally:
        if was_training:
            model.train()
    return logits, emb


def batched_forward(model: Any, tokenizer: Any, texts: Sequence[str], *, max_length: int,
                    batch_size: int = 64, desc: str = "predict", output: str = "logits") -> np.ndarray:
    """One output of :func:`forward`: ``logits`` or the mean-pooled ``embedding``."""
    if output not in ("logits", "embedding"):
        raise ValueError(f"output: {output!r} is not one of 'logits', 'embedding'")
    logits, emb = forward(model, tokenizer, texts, max_length=max_length, batch_size=batch_size,
                          output="logits" if output == "logits" else "embedding", desc=desc)
    return logits if output == "logits" else emb


def with_embedding(model: Any) -> Any:
    """A torch module returning ``(logits, embedding)`` from a classifier (what the ONNX graph computes)."""
    import torch

    class WithEmbedding(torch.nn.Module):
        def __init__(self, inner: Any) -> None:
            super().__init__()
            self.inner = inner

        def forward(self, input_ids: Any, attention_mask: Any, token_type_ids: Any = None) -> Any:
            enc = {"input_ids": input_ids, "attention_mask": attention_mask}
            if token_type_ids is not None:
                enc["token_type_ids"] = token_type_ids
            return encoder_outputs(self.inner, enc, "both")

    return WithEmbedding(model).eval()


def probe_graph(encoder: Any, weight: np.ndarray, bias: np.ndarray, *, l2_input: bool = False) -> Any:
    """A torch module: frozen encoder → :func:`mean_pool` → an affine map (a probe's LR; on the L2-normalised
    pool when ``l2_input``), returning ``(logits, embedding)`` — the embedding always the raw pool."""
    import torch

    class ProbeGraph(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.inner = encoder
            self.register_buffer("weight", torch.tensor(weight, dtype=torch.float32))
            self.register_buffer("bias", torch.tensor(bias, dtype=torch.float32))

        def forward(self, input_ids: Any, attention_mask: Any, token_type_ids: Any = None) -> Any:
            enc = {"input_ids": input_ids, "attention_mask": attention_mask}
            if token_type_ids is not None:
                enc["token_type_ids"] = token_type_ids
            _, emb = encoder_outputs(self.inner, enc, "embedding")
            x = emb / emb.norm(dim=-1, keepdim=True).clamp_min(1e-12) if l2_input else emb
            return x @ self.weight + self.bias, emb

    return ProbeGraph().eval()


def module_forward(module: Any, tokenizer: Any, texts: Sequence[str], *, max_length: int,
                   batch_size: int = 32) -> tuple[np.ndarray, np.ndarray]:
    """A traced-style module (``module(**inputs) -> (logits, embedding)``, e.g. :func:`with_embedding`)
    over ``texts`` in length-sorted batches: the PyTorch reference an export is checked against."""
    import torch

    names = input_names(tokenizer)

    def run(batch: list[str]) -> tuple[np.ndarray, np.ndarray]:
        enc = encode(tokenizer, batch, max_length)
        lg, em = module(**{k: enc[k] for k in names if k in enc})
        return lg.float().numpy(), em.float().numpy()

    with torch.inference_mode():
        logits, emb = sorted_batches(texts, batch_size, run)
    return logits, emb


__all__ = ["INPUT_NAMES", "batched_forward", "encode", "encoder_outputs", "forward", "input_names",
           "length_order", "mean_pool", "module_forward", "probe_graph", "sorted_batches", "with_embedding"]

"""The torch module of a multi-task model: ONE encoder, one linear head per task over its mean-pooled
embedding (:func:`transferops.inference.mean_pool`, the project's one sentence embedding).

``forward`` returns a transformers ``SequenceClassifierOutput`` whose ``logits`` are every task's
logits side by side (task order of the manifest), so the shared forward pass
(:func:`transferops.inference.forward`) runs it like any classifier: one pass, every head.
Imported lazily (torch) by :mod:`transferops.artifacts.multitask` and the trainer.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

#: The heads' weights inside ``model/`` (the encoder is a plain HF folder beside it).
HEADS_FILE = "heads.safetensors"


class MultiTaskNet(torch.nn.Module):
    """``base_model`` (a bare HF encoder) + ``heads[task]`` (``Linear(hidden, k_task)``)."""

    def __init__(self, encoder: Any, heads: Mapping[str, int], *, dropout: float = 0.1) -> None:
        super().__init__()
        self.base_model: Any = encoder
        self.config: Any = encoder.config
        self.task_names = list(heads)
        hidden = int(encoder.config.hidden_size)
        self.dropout = torch.nn.Dropout(dropout)
        self.heads = torch.nn.ModuleDict({name: torch.nn.Linear(hidden, int(k)) for name, k in heads.items()})

    def head_logits(self, pooled: torch.Tensor) -> torch.Tensor:
        """Every head on the pooled embedding, concatenated in task order."""
        z = self.dropout(pooled)
        return torch.cat([self.heads[name](z) for name in self.task_names], dim=1)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor,
                token_type_ids: torch.Tensor | None = None, output_hidden_states: bool = False,
                **_: Any) -> Any:
        from transformers.modeling_outputs import SequenceClassifierOutput

        from transferops.inference import mean_pool

        kw: dict[str, Any] = {"input_ids": input_ids, "attention_mask": attention_mask}
        if token_type_ids is not None:
            kw["token_type_ids"] = token_type_ids
        hidden = self.base_model(**kw).last_hidden_state
        logits = self.head_logits(mean_pool(hidden, attention_mask))
        return SequenceClassifierOutput(logits=logits, hidden_states=(hidden,) if output_hidden_states else None)


def build_net(checkpoint: str | Path, heads: Mapping[str, int]) -> MultiTaskNet:
    """A fresh net: the checkpoint's encoder (its MLM/pooler extras dropped) and new heads."""
    from transformers import AutoModel

    from transferops.modeling import quiet_transformers

    with quiet_transformers():
        enc = AutoModel.from_pretrained(str(checkpoint), local_files_only=True, add_pooling_layer=False) \
            if _takes_pooler(checkpoint) else AutoModel.from_pretrained(str(checkpoint), local_files_only=True)
    return MultiTaskNet(enc, heads)


def _takes_pooler(checkpoint: str | Path) -> bool:
    import json

    cfg = Path(checkpoint) / "config.json"
    try:
        return json.loads(cfg.read_text()).get("model_type") in {"bert", "roberta", "xlm-roberta"}
    except (OSError, ValueError):
        return False


def save_net(net: MultiTaskNet, mdir: str | Path) -> None:
    """``model/``: the encoder as a HF folder (safetensors) + :data:`HEADS_FILE`."""
    from safetensors.torch import save_file

    mdir = Path(mdir)
    net.base_model.save_pretrained(str(mdir), safe_serialization=True)
    save_file({k: v.detach().cpu().contiguous() for k, v in net.heads.state_dict().items()},
              str(mdir / HEADS_FILE))


def load_net(mdir: str | Path, heads: Mapping[str, int]) -> MultiTaskNet:
    """The net saved by :func:`save_net` (safetensors only)."""
    from safetensors.torch import load_file

    from transferops.errors import ArtifactError

    mdir = Path(mdir)
    if not (mdir / HEADS_FILE).exists():
        raise ArtifactError(f"{mdir}: {HEADS_FILE} is missing; the multi-task artifact is incomplete")
    net = build_net(mdir, heads)
    state = load_file(str(mdir / HEADS_FILE))
    try:
        net.heads.load_state_dict(state)
    except RuntimeError as exc:
        raise ArtifactError(f"{mdir}/{HEADS_FILE}: does not match the tasks in the manifest ({exc})".splitlines()[0]
                            ) from exc
    return net.eval()


__all__ = ["HEADS_FILE", "MultiTaskNet", "build_net", "load_net", "save_net"]

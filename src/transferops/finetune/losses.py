"""Losses: cross-entropy (optionally class-weighted), focal loss (Lin et al. 2017), and BCE for
multi-label tasks (focal variant too)."""

from __future__ import annotations

import torch
import torch.nn.functional as F


class FocalLoss(torch.nn.Module):
    """Multi-class focal loss ``-alpha_y (1 - p_y)^gamma log p_y``; gamma=0 equals (weighted) CE."""

    def __init__(self, gamma: float = 2.0, weight: torch.Tensor | None = None) -> None:
        super().__init__()
        self.gamma = gamma
        self.weight: torch.Tensor | None
        self.register_buffer("weight", weight if weight is not None else None)

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        logp = F.log_softmax(logits.float(), dim=-1)
        logp_t = logp.gather(1, target[:, None]).squeeze(1)
        p_t = logp_t.exp()
        loss = -((1.0 - p_t) ** self.gamma) * logp_t
        if self.weight is not None:
            w = self.weight[target]
            return (loss * w).sum() / w.sum()
        return loss.mean()


class BinaryFocalLoss(torch.nn.Module):
    """Sigmoid focal loss for multi-label targets (0/1 matrix)."""

    def __init__(self, gamma: float = 2.0, pos_weight: torch.Tensor | None = None) -> None:
        super().__init__()
        self.gamma = gamma
        self.pos_weight: torch.Tensor | None
        self.register_buffer("pos_weight", pos_weight if pos_weight is not None else None)

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        target = target.float()
        bce = F.binary_cross_entropy_with_logits(logits.float(), target, reduction="none",
                                                 pos_weight=self.pos_weight)
        if self.gamma == 0:
            return bce.mean()
        p = torch.sigmoid(logits.float())
        p_t = p * target + (1 - p) * (1 - target)
        return (((1 - p_t) ** self.gamma) * bce).mean()


def build_loss(kind: str, *, multilabel: bool, gamma: float, weight: torch.Tensor | None) -> torch.nn.Module:
    if multilabel:
        if kind == "focal":
            return BinaryFocalLoss(gamma, pos_weight=weight)
        return torch.nn.BCEWithLogitsLoss(pos_weight=weight)
    if kind == "focal":
        return FocalLoss(gamma, weight)
    return torch.nn.CrossEntropyLoss(weight=weight)


def balanced_weights(y: torch.Tensor | list[int], n_classes: int, multilabel: bool = False) -> torch.Tensor:
    """sklearn's 'balanced' weights n / (k * n_c); for multi-label, pos_weight = negatives / positives."""
    t = torch.as_tensor(y)
    if multilabel:
        pos = t.float().sum(0).clamp(min=1.0)
        neg = t.shape[0] - pos
        return (neg / pos).clamp(max=100.0)
    counts = torch.bincount(t, minlength=n_classes).float().clamp(min=1.0)
    return t.numel() / (n_classes * counts)

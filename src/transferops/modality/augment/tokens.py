"""Token-level perturbations: masking and replacement (the hiring case's "mask and replace job titles")."""

from __future__ import annotations

import random

from transferops.modality.augment.base import AugmentContext, edit_words, register_perturbation


@register_perturbation("token_mask")
def token_mask(text: str, rng: random.Random, rate: float, ctx: AugmentContext) -> str:
    """Replace words by the mask token (the model sees the context without them)."""
    return edit_words(text, rng, rate, lambda w, r: ctx.mask_token)


@register_perturbation("token_replace")
def token_replace(text: str, rng: random.Random, rate: float, ctx: AugmentContext) -> str:
    """Replace words by other frequent words of the training data (``TextAugmenter.fit``); without
    a vocabulary it masks instead."""
    def edit(w: str, r: random.Random) -> str:
        if not ctx.vocab:
            return ctx.mask_token
        new = r.choice(ctx.vocab)
        return new.capitalize() if w[:1].isupper() else new
    return edit_words(text, rng, rate, edit, min_len=3)

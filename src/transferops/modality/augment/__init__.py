"""Text augmentation and robustness perturbations behind one registry.

Built-in perturbations: ``char_insert``, ``char_delete``, ``char_substitute``, ``char_swap``,
``keyboard``, ``leetspeak`` (:mod:`.chars`) and ``token_mask``, ``token_replace`` (:mod:`.tokens`).
``train --augment`` adds perturbed copies of training rows; ``evaluate --robustness`` scores the
test split under each perturbation. Pure Python (``random`` + ``re``): no model, no download.
"""

from transferops.modality.augment import chars, tokens  # noqa: F401  (register the built-ins)
from transferops.modality.augment.base import (
    AugmentContext,
    TextAugmenter,
    check_perturbations,
    get_perturbation,
    parse_slice,
    perturbation_names,
    register_perturbation,
)

__all__ = ["AugmentContext", "TextAugmenter", "check_perturbations", "get_perturbation", "parse_slice",
           "perturbation_names", "register_perturbation"]

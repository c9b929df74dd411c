"""One exception tree for the whole package.

Every error raised on purpose derives from :class:`TransferOpsError`, and each subclass also
inherits the built-in type a caller would naturally catch (``ValueError``, ``FileNotFoundError``,
``ImportError``), so ``except ValueError`` keeps working for people who do not know our names.
Messages say what was wrong *and* how to fix it.
"""

from __future__ import annotations


class TransferOpsError(Exception):
    """Root of every error transferops raises on purpose."""


class ConfigError(TransferOpsError, ValueError):
    """A configuration value or key is invalid (the message names the field)."""


class DataError(TransferOpsError, ValueError):
    """Input data is malformed: the message names the file, row and column."""


class CheckpointNotFoundError(TransferOpsError, FileNotFoundError):
    """A pretrained checkpoint is not installed or not a Hugging Face model folder."""


class ArtifactError(TransferOpsError, FileNotFoundError):
    """A saved transferops artifact is missing files or is not an artifact at all."""


class MissingExtraError(TransferOpsError, ImportError):
    """An optional dependency is missing; the message names the extra to install."""


class NotFittedError(TransferOpsError, ValueError):
    """An object was used before ``fit`` was called."""


class GateFailedError(TransferOpsError, AssertionError):
    """A quality gate (metric threshold, parity check, accuracy drop) failed."""

"""Saved models: one folder, fixed file names, ``transferops.json`` manifest; load and predict."""

from transferops.artifacts.model import TransferOpsModel, load, read_manifest, update_manifest

__all__ = ["TransferOpsModel", "load", "read_manifest", "update_manifest"]

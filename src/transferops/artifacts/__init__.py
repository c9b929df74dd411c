"""Saved models: one folder, fixed file names, ``transferops.json`` manifest; load and predict."""

from transferops.artifacts.classifier import Classifier, ClassifierBase
from transferops.artifacts.kinds import register_kind
from transferops.artifacts.manifest import Manifest, read_manifest, update_manifest, write_manifest
from transferops.artifacts.model import TransferOpsModel, load

__all__ = ["Classifier", "ClassifierBase", "Manifest", "TransferOpsModel", "load", "read_manifest",
           "register_kind", "update_manifest", "write_manifest"]

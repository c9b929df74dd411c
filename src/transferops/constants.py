"""Fixed file names of everything transferops writes, in one place (PEFT's habit)."""

from __future__ import annotations

MANIFEST_NAME = "transferops.json"
MODEL_DIR = "model"  # Hugging Face folder (full/freeze/head) or PEFT adapter folder (lora)
MEMBERS_DIR = "members"  # ensemble members, one artifact folder each (seed ensembles, the search's ensemble)
ADAPTER_DIR = "adapter"
TOKENIZER_DIR = "tokenizer"
DATA_DIR = "data"
TRAIN_SPLIT = "train.parquet"
VALIDATION_SPLIT = "validation.parquet"
TEST_SPLIT = "test.parquet"
REJECTS_FILE = "rejects.csv"
BASELINE_FILE = "baseline.json"
REFERENCE_PROFILE = "reference_profile.json"
TRAINING_STATE_DIR = "training_state"
HISTORY_FILE = "history.jsonl"
ONNX_MODEL = "model.onnx"
ONNX_INT8_MODEL = "model.int8.onnx"
EXPORT_MANIFEST = "export.json"

#: Canonical column names inside saved splits.
TEXT_COL = "text"
LABEL_COL = "label"

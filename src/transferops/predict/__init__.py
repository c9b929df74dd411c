"""Batch scoring: stream CSV/JSONL/Parquet through a model in chunks, resumable."""

from transferops.predict.batch import BatchPredictResult, predict_file

__all__ = ["BatchPredictResult", "predict_file"]

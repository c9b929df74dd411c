"""Economics: training, labeling, storage and inference cost from measured runs; ROI and payback."""

from transferops.economics.cost import (
    ArtifactMeasurement,
    InferenceCost,
    LabelingCost,
    StorageCost,
    find_serve_throughput,
    inference_cost,
    labeling_cost,
    measure_artifact,
    read_serve_throughput,
    storage_cost,
    training_cost,
)
from transferops.economics.report import CostInputs, CostReport, build_cost_report
from transferops.economics.roi import Benefit, ROIConfig, ROIResult, compute_roi

__all__ = [
    "ArtifactMeasurement",
    "Benefit",
    "CostInputs",
    "CostReport",
    "InferenceCost",
    "LabelingCost",
    "ROIConfig",
    "ROIResult",
    "StorageCost",
    "build_cost_report",
    "compute_roi",
    "find_serve_throughput",
    "inference_cost",
    "labeling_cost",
    "measure_artifact",
    "read_serve_throughput",
    "storage_cost",
    "training_cost",
]

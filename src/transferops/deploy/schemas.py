"""Request and response schemas of the server (separate, with field constraints)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class PredictRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    texts: list[str] = Field(min_length=1, description="texts to classify (limits: max_texts_per_request, "
                             "max_chars_per_text)", examples=[["Shares rose sharply after the results"]])
    ids: list[str | int] | None = Field(None, description="optional client ids, one per text, echoed back")


class Prediction(BaseModel):
    id: str | int | None = Field(None, description="the client id given with the text")
    prediction_id: str = Field(description="server id of this prediction (join key for feedback/outcomes)")
    label: str | list[str]
    probabilities: dict[str, float]
    confidence: float
    route: Literal["auto", "review"] = Field(description="review: confidence below the review threshold")
    model_version: str


class PredictResponse(BaseModel):
    model: str
    model_version: str
    arm: str | None = None
    experiment: str | None = None
    predictions: list[Prediction]


class AdapterRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    path: str | None = Field(None, description="folder inside the adapters folder (default: the name)")


class ModelRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    path: str = Field(min_length=1, description="export folder or artifact inside an allowed model root")

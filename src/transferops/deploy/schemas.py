"""Request and response schemas of the server (separate, with field constraints)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, StrictInt, StrictStr, field_validator


def unencodable_at(s: str) -> int | None:
    """Index of the first character that UTF-8 cannot encode (an unpaired surrogate such as
    ``"\\ud800"``, valid in JSON but not text), or None."""
    try:
        s.encode("utf-8")
    except UnicodeEncodeError as exc:
        return int(exc.start)
    return None


def check_path_text(v: str) -> str:
    """A filesystem path sent over HTTP: no NUL byte, no unpaired surrogate."""
    if "\x00" in v:
        raise ValueError("contains a NUL byte (\\u0000); a path cannot")
    pos = unencodable_at(v)
    if pos is not None:
        raise ValueError(f"character {pos} is an unpaired surrogate; send the path as valid UTF-8 text")
    return v


class PredictRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    # Strict: 1 is not a text and true is not an id (JSON booleans would otherwise pass as ints).
    texts: list[StrictStr] = Field(min_length=1, description="texts to classify (limits: max_texts_per_request, "
                             "max_chars_per_text)", examples=[["Shares rose sharply after the results"]])
    ids: list[StrictStr | StrictInt] | None = Field(None, description="optional client ids, one per text, "
                                                    "echoed back (strings or integers; not booleans)")


class TaskPrediction(BaseModel):
    label: str | list[str] = Field(description="the task's decided label (a list for a multi-label task)")
    probabilities: dict[str, float] = Field(description="the task's own labels (not qualified)")
    confidence: float = Field(description="probability of the decided label under the task's stored rule")


class Prediction(BaseModel):
    id: str | int | None = Field(None, description="the client id given with the text")
    prediction_id: str = Field(description="server id of this prediction (join key for feedback/outcomes)")
    label: str | list[str]
    probabilities: dict[str, float]
    confidence: float
    route: Literal["auto", "review"] = Field(description="review: confidence below the review threshold")
    model_version: str
    tasks: dict[str, TaskPrediction] | None = Field(
        None, description="multi-task models only: every task's prediction from the same forward pass (then "
        "`label` lists the decided `task:label` names, `probabilities` are keyed `task:label` and `confidence` is "
        "the least confident task's)")


class PredictResponse(BaseModel):
    model: str
    model_version: str
    arm: str | None = None
    experiment: str | None = None
    predictions: list[Prediction]


class AdapterRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    path: str | None = Field(None, description="folder inside the adapters folder (default: the name)")

    @field_validator("path")
    @classmethod
    def _path_ok(cls, v: str | None) -> str | None:
        return None if v is None else check_path_text(v)


class ModelRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    path: str = Field(min_length=1, description="export folder or artifact inside an allowed model root")

    @field_validator("path")
    @classmethod
    def _path_ok(cls, v: str) -> str:
        return check_path_text(v)

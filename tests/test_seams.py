"""The shared seams of issue 13 (part E): declarative validation, post-train hooks, the modality seam.

The validation contract runs over every config dataclass that declares ``_parameter_constraints``
(scikit-learn's ``parametrize_with_checks`` habit): defaults satisfy the constraints, every constraint
names a real field, and a value outside each constraint is a ConfigError naming that field.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from numbers import Integral, Real
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from transferops import hooks
from transferops._validation import Interval, Options, check_param, validate_params
from transferops.abtest.analysis import AnalysisConfig, GuardrailConfig
from transferops.adapt.distill import DistillConfig
from transferops.adapt.mlm import AdaptConfig
from transferops.data import SplitConfig, find_leakage
from transferops.errors import ConfigError, DataError
from transferops.finetune.config import LoraSettings, TrainConfig
from transferops.modality import TEXT, Modality, available_modalities, get_modality, register_modality
from transferops.modality import base as modality_base
from transferops.monitor.drift import DriftConfig
from transferops.monitor.retrain import RetrainConfig
from transferops.select.advise import AdviseContext
from transferops.select.selection import SelectConfig

# (class, keyword arguments every instance needs)
CONFIGS: list[tuple[type, dict[str, Any]]] = [
    (TrainConfig, {}), (LoraSettings, {}), (SplitConfig, {}), (DriftConfig, {}), (RetrainConfig, {}),
    (GuardrailConfig, {}), (AnalysisConfig, {}), (SelectConfig, {}), (AdviseContext, {}), (AdaptConfig, {}),
    (DistillConfig, {"layers": 2}),
]


# ------------------------------------------------------------------------------------ validation
def test_interval_and_options_messages_name_field_and_range() -> None:
    with pytest.raises(ConfigError, match=r"^lr: must be in \(0, 1\], got -1$"):
        check_param("lr", -1, Interval(Real, 0, 1, closed="right"))
    with pytest.raises(ConfigError, match=r"^epochs: expected a whole number, got float 2.5$"):
        check_param("epochs", 2.5, Interval(Integral, 1, None))
    with pytest.raises(ConfigError, match=r"^loss: 'mse' is not one of 'ce', 'focal'$"):
        check_param("loss", "mse", Options("ce", "focal"))
    with pytest.raises(ConfigError, match=r"warn: must be a finite number"):
        check_param("warn", math.nan, Interval(Real, 0, None, closed="neither"))
    with pytest.raises(ConfigError, match=r"^n: must be >= 4, got 2; need more$"):
        check_param("n", 2, Interval(Integral, 4, None), hint="need more")
    with pytest.raises(ConfigError, match="flag: expected a number"):
        check_param("flag", True, Interval(Real, 0, 1))  # a boolean is not a number


def test_none_only_where_declared_and_numpy_numbers_accepted() -> None:
    check_param("epochs", None, [None, Interval(Integral, 1, None)])
    check_param("epochs", np.int64(3), Interval(Integral, 1, None))
    check_param("lr", np.float32(0.5), Interval(Real, 0, 1))
    with pytest.raises(ConfigError, match=r"\(or null\)"):
        check_param("epochs", 0, [None, Interval(Integral, 1, None)])
    with pytest.raises(ConfigError, match="expected a number"):
        check_param("lr", None, Interval(Real, 0, 1))
    validate_params({"a": 1, "b": "x"}, {"a": Interval(Integral, 0, 2), "b": Options("x")})  # a mapping too


def _violation(spec: Any) -> Any:
    """A value outside ``spec`` (an Interval / Options, or a list of alternatives)."""
    alts = [c for c in (spec if isinstance(spec, Sequence) else [spec]) if c is not None]
    first = alts[0]
    if isinstance(first, Options):
        return "<not-an-option>"
    assert isinstance(first, Interval)
    integral = first.kind is Integral
    if first.left is not None:
        open_left = first.closed in ("right", "neither")
        v = first.left if open_left else first.left - 1
        return int(math.floor(v)) if integral and v != int(v) else (int(v) if integral else float(v))
    assert first.right is not None
    return int(first.right) + 1 if integral else float(first.right) + 1.0


@pytest.mark.parametrize(("cls", "base"), CONFIGS, ids=[c.__name__ for c, _ in CONFIGS])
def test_config_contract(cls: type, base: dict[str, Any]) -> None:
    constraints = cls._parameter_constraints  # type: ignore[attr-defined]
    fields = {f.name for f in dataclasses.fields(cls)}
    assert constraints and set(constraints) <= fields, set(constraints) - fields
    cls(**base)  # the defaults satisfy the declared constraints
    for name, spec in constraints.items():
        bad = _violation(spec)
        with pytest.raises(ConfigError, match=rf"\b{name}\b") as info:
            cls(**{**base, name: bad})
        assert "\n" not in str(info.value)


# ------------------------------------------------------------------------------------ post-train hooks
def test_builtin_hooks_registered_by_their_stages_in_order() -> None:
    names = [name for name, _ in hooks.post_train_hooks()]
    assert names[:2] == ["calibration", "reference_profile"]
    from transferops.evaluate import calibration
    from transferops.monitor import profile

    fns = dict(hooks.post_train_hooks())
    assert fns["calibration"] is calibration.post_train and fns["reference_profile"] is profile.post_train


def test_registered_hook_runs_after_builtins(tmp_path: Path) -> None:
    seen: list[str] = []

    @hooks.register_post_train("zz-test", order=1000)
    def _hook(artifact_dir: Path, config: Any) -> None:
        seen.append(f"{artifact_dir.name}:{config}")

    @hooks.register_post_train("aa-test", order=-1)
    def _first(artifact_dir: Path, config: Any) -> None:
        seen.append("first")

    try:
        names = [n for n, _ in hooks.post_train_hooks()]
        assert names[0] == "aa-test" and names[-1] == "zz-test"
        # the built-ins do nothing here: calibrate is off and the folder holds no model (profile logs)
        hooks.run_post_train(tmp_path, "cfg")
        assert seen == ["first", f"{tmp_path.name}:cfg"]
    finally:
        hooks._POST_TRAIN.pop("zz-test")
        hooks._POST_TRAIN.pop("aa-test")


def test_module_exists() -> None:
    assert hooks.module_exists("transferops.evaluate.calibration")
    assert not hooks.module_exists("transferops.no_such_stage.module")
    assert not hooks.module_exists("no_such_package.module")


# ------------------------------------------------------------------------------------ modality seam
def test_text_modality() -> None:
    text = get_modality("text")
    assert text is TEXT and isinstance(text, Modality) and "text" in available_modalities()
    assert text.leakage_key("Hello,  WORLD!") == text.leakage_key("hello world")
    assert text.leakage_key("hello world") != text.leakage_key("hello there")
    assert text.check_inputs(("a", "b")) == ["a", "b"]
    with pytest.raises(DataError, match=r"wrap it: \[text\]"):
        text.check_inputs("one text")
    with pytest.raises(DataError, match=r"texts\[1\]: expected a string, got int"):
        text.check_inputs(["a", 3])
    slices = text.auto_slices(["a", "bb" * 10, "ccc" * 30, "d" * 200])
    assert list(slices) == list(text.auto_slice_names) == ["text_length"]
    assert len(slices["text_length"]) == 4 and slices["text_length"][0].startswith("Q1")


def test_unknown_modality_suggests_the_name() -> None:
    with pytest.raises(ConfigError, match=r"modality: 'txt' is not one of .*did you mean 'text'"):
        get_modality("txt")


class _RowModality:
    """A toy non-text modality (table rows as tuples): the seam takes it without a branch anywhere."""

    name = "test-rows"
    auto_slice_names: tuple[str, ...] = ()

    def check_inputs(self, inputs: Sequence[Any]) -> list[Any]:
        return [tuple(r) for r in inputs]

    def leakage_key(self, item: Any) -> str:
        return repr(tuple(round(float(v), 3) for v in item))

    def size(self, item: Any) -> int:
        return len(item)

    def load_preprocessor(self, path: str | Path) -> Any:
        return None

    def encode(self, preprocessor: Any, items: Sequence[Any], *, max_length: int) -> dict[str, Any]:
        return {"x": np.asarray(items, dtype=np.float32)}

    def check_baseline_fits(self, items: Sequence[Any], n_classes: int) -> None:
        return None

    def baseline(self, *, multilabel: bool = False, seed: int = 0, tune: bool = True, **kw: Any) -> Any:
        raise NotImplementedError

    def auto_slices(self, items: Sequence[Any]) -> dict[str, list[str]]:
        return {}


def test_a_new_modality_plugs_into_leakage_without_branches() -> None:
    rows = _RowModality()
    register_modality(rows)
    try:
        assert get_modality("test-rows") is rows
        with pytest.raises(ConfigError, match="already registered"):
            register_modality(_RowModality())
        train = [(1.0, 2.0), (3.0, 4.0), (5.0, 6.0)]
        test = [(3.0001, 4.0), (7.0, 8.0)]
        rep = find_leakage(train, test, modality="test-rows")
        assert rep.exact_pairs == [(1, 0)]
        # the same rows as text would not match (different key), so the modality really decides
        assert find_leakage([str(r) for r in train], [str(r) for r in test]).exact_pairs == []
    finally:
        modality_base._REGISTRY.pop("test-rows")


def test_register_refuses_what_is_not_a_modality() -> None:
    with pytest.raises(TypeError, match="Modality protocol"):
        register_modality(object())  # type: ignore[arg-type]

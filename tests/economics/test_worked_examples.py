"""The source text's worked figures, computed by the tools (and where the text is wrong, documented)."""

from __future__ import annotations

import pytest

from transferops.economics import (
    compute_roi,
    inference_cost,
    labeling_cost,
    storage_cost,
    training_cost,
)
from transferops.economics.cost import GB, MB

CHATBOT = {
    "name": "Customer support chatbot",
    "one_time": {"labeling": 15_000, "engineering": 48_000, "training_compute": 500},
    "recurring_monthly": {"inference": 200, "maintenance": 2_000},
    "benefit": {"units_per_month": 20_000, "rate": 0.4, "value_per_unit": 8},
}


def test_chatbot_roi() -> None:
    r = compute_roi(CHATBOT)
    assert r.first_year_cost == 89_900
    assert r.benefit_monthly == 64_000 and r.annual_benefit == 768_000
    assert round(r.roi * 100) == 754
    assert round(r.payback_months, 1) == 1.4
    # the stricter break-even (one-time / net monthly saving) is about a month
    assert r.breakeven_months == pytest.approx(63_500 / 61_800)


@pytest.mark.parametrize(("hours", "cost"), [(2, 6.12), (18, 55.08), (1.5, 4.59)])
def test_compute_examples_at_3_06_per_hour(hours: float, cost: float) -> None:
    assert training_cost(hours, 3.06) == pytest.approx(cost)


def test_forty_model_storage() -> None:
    s = storage_cost(40, 440 * MB, 2 * MB)
    assert s.full_total_bytes == 17.6 * GB
    assert s.adapters_total_bytes == 80 * MB
    assert round(s.reduction * 100, 1) == 99.5
    # with the shared base model kept once, the saving is smaller but still large
    assert s.adapters_with_base_bytes == 520 * MB
    assert s.reduction_with_base == pytest.approx(1 - 520 / 17_600)


def test_forty_model_retraining_cost() -> None:
    # The text: "$6 x 40 = $240 ... $4.59 x 40 = $183.60 ... 23% cost reduction". With the per-run cost it
    # computed earlier ($6.12) the full retrain is $244.80 and the reduction 25%; with its rounded $6, 23.5%.
    full, lora = 40 * training_cost(2, 3.06), 40 * training_cost(1.5, 3.06)
    assert (full, lora) == (pytest.approx(244.80), pytest.approx(183.60))
    assert 1 - lora / full == pytest.approx(0.25)
    text_reduction = 1 - 183.60 / 240
    assert text_reduction == pytest.approx(0.235)


def test_labeling_examples() -> None:
    img = labeling_cost(20_000, price_per_label=0.05, active_learning_examples=2_000)
    assert (img.cost, img.active_learning_cost) == (pytest.approx(1_000), pytest.approx(100))
    ner = labeling_cost(10_000, minutes_per_label=15, hourly_rate=50, active_learning_examples=1_200)
    assert ner.cost == pytest.approx(125_000) and ner.active_learning_cost == pytest.approx(15_000)
    assert ner.savings == pytest.approx(110_000)
    red = labeling_cost(20_000, price_per_label=0.05, active_learning_reduction=0.9)
    assert red.active_learning_examples == 2_000


def test_mistake_2_inference_volume() -> None:
    assert inference_cost(cost_per_prediction=0.02, monthly_volume=10_000_000).monthly_cost == \
        pytest.approx(200_000)
    assert inference_cost(cost_per_prediction=0.001, monthly_volume=10_000_000).monthly_cost == \
        pytest.approx(10_000)
    # from throughput: 50 predictions/s on a $3.06/h instance
    i = inference_cost(throughput_per_second=50, price_per_hour=3.06, monthly_volume=1_000_000)
    assert i.cost_per_prediction == pytest.approx(3.06 / (3600 * 50))
    assert i.monthly_cost == pytest.approx(1_000_000 * 3.06 / 180_000)
    # a server busy half the time costs twice as much per prediction
    half = inference_cost(throughput_per_second=50, price_per_hour=3.06, utilization=0.5)
    assert half.cost_per_prediction == pytest.approx(2 * i.cost_per_prediction)


def test_retinopathy_savings_text_arithmetic_is_wrong() -> None:
    # The text: "Saved $774,000 in ophthalmologist time ($45 x 15,600 screenings ...)".
    # 18,000 screenings − 2,400 flagged = 15,600; 15,600 × $45 = $702,000, not $774,000.
    # Over the 6 months reported, against $120,000: the tool computes from the inputs.
    r = compute_roi({"name": "retinopathy", "horizon_months": 6, "one_time": {"development": 120_000},
                     "recurring_monthly": {},
                     "benefit": {"units_per_month": (18_000 - 2_400) / 6, "value_per_unit": 45}})
    assert r.annual_benefit == pytest.approx(702_000)  # "annual" = over the horizon (6 months here)
    assert r.annual_benefit != 774_000
    assert r.net_benefit == pytest.approx(582_000)
    # The text's "payback 2.8 months" does not follow from either figure: $120k / ($702k / 6) ≈ 1.03.
    assert r.payback_months == pytest.approx(120_000 / 117_000)

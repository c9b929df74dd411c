"""Deterministic assignment: same key → same arm (also in a fresh process), split within ±1%."""

from __future__ import annotations

import subprocess
import sys
from collections import Counter

import pytest

from transferops.abtest.assignment import assign_arm, parse_split
from transferops.errors import ConfigError

ARMS = ["control", "treatment"]


def test_same_key_same_arm_across_calls_and_processes() -> None:
    keys = [f"user-{i}" for i in range(200)]
    here = [assign_arm(k, ARMS, [0.5, 0.5]) for k in keys]
    assert here == [assign_arm(k, ARMS, [0.5, 0.5]) for k in keys]
    # A new interpreter (a restart, or another replica) with a different hash seed agrees.
    code = ("from transferops.abtest.assignment import assign_arm;"
            "print(','.join(assign_arm(f'user-{i}', ['control','treatment'], [0.5,0.5]) "
            "for i in range(200)))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env={"PYTHONHASHSEED": "12345", "PATH": ""}).stdout.strip()
    assert out.split(",") == here
    assert set(here) == set(ARMS)


@pytest.mark.parametrize(("split", "weights"), [("50/50", [0.5, 0.5]), ("90/10", [0.9, 0.1])])
def test_split_within_one_percent_over_100k_keys(split: str, weights: list[float]) -> None:
    w = parse_split(split, 2)
    assert w == pytest.approx(weights)
    counts = Counter(assign_arm(f"k{i}", ARMS, w) for i in range(100_000))
    for arm, target in zip(ARMS, weights, strict=True):
        assert abs(counts[arm] / 100_000 - target) <= 0.01


def test_salt_changes_assignment_but_stays_balanced() -> None:
    a = [assign_arm(f"k{i}", ARMS, [0.5, 0.5]) for i in range(2000)]
    b = [assign_arm(f"k{i}", ARMS, [0.5, 0.5], salt="exp-2") for i in range(2000)]
    assert a != b  # a new experiment reshuffles users


@pytest.mark.parametrize("bad", ["50-50", "50/50/0", "-10/110", "0/0", "a/b"])
def test_parse_split_errors(bad: str) -> None:
    with pytest.raises(ConfigError, match="split"):
        parse_split(bad, 2)

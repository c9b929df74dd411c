"""Every branch of the advice table: pure rules on a profile, plus the data-driven ones end to end."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pandas as pd
import pytest

from transferops.cli.main import main
from transferops.data import ColumnMap
from transferops.errors import ConfigError, DataError
from transferops.select.advise import RULES as ALL_RULES
from transferops.select.advise import (
    AdviseContext,
    DataProfile,
    TokenStats,
    advise,
    detect_language,
    recommend,
    rule_relevant_checkpoint,
    rule_size,
)


def _profile(**kw: object) -> DataProfile:
    base = DataProfile(n=500, task="multiclass", n_classes=5, label_counts={c: 100 for c in "abcde"},
                       min_per_class=100, max_per_class=100, imbalance_ratio=1.0, classes_under_50=[],
                       duplicate_rate=0.0, conflicting_duplicates=0, median_chars=300.0, has_time=False,
                       has_group=False, languages={"en": 1.0}, tokens=[], unlabeled=None)
    return replace(base, **kw)  # type: ignore[arg-type]


def _fired(p: DataProfile, ctx: AdviseContext | None = None) -> list[str]:
    c = ctx or AdviseContext()
    return [f.rule for rule in ALL_RULES if (f := rule(p, c)) is not None]


@pytest.mark.parametrize(("n", "rule"), [(999, "labeled<1k"), (1000, "labeled1k-10k"),
                                         (9_999, "labeled1k-10k"), (10_000, "labeled10k-100k"),
                                         (100_000, "labeled>100k")])
def test_size_bands_follow_the_source_table(n: int, rule: str) -> None:
    assert rule_size(_profile(n=n), AdviseContext()).rule == rule


@pytest.mark.parametrize(("n", "strategy", "approach"), [
    (500, "freeze", "transfer learning"),
    (5_000, "freeze", "try both"),
    (50_000, "full", "transfer learning"),
    (200_000, "full", "from scratch or transfer"),
])
def test_strategy_and_approach_by_size(n: int, strategy: str, approach: str) -> None:
    p = _profile(n=n)
    r = recommend(p, AdviseContext(), [], ["minilm-l6", "mpnet-base"])
    assert r.strategy == strategy and approach in r.approach
    assert r.checkpoints == ["minilm-l6", "mpnet-base"]
    assert r.commands[0].startswith("transferops select")
    assert "--candidates minilm-l6,mpnet-base" in r.commands[0]


def test_no_relevant_checkpoint_three_ways() -> None:
    assert rule_relevant_checkpoint(_profile(), AdviseContext()) is None
    said = rule_relevant_checkpoint(_profile(), AdviseContext(no_relevant_checkpoint=True))
    assert said is not None and "from scratch" in said.advice
    foreign = rule_relevant_checkpoint(_profile(languages={"de": 0.8, "en": 0.2}), AdviseContext())
    assert foreign is not None and "non-English" in foreign.observed
    unk = TokenStats("x", 256, 100, 50, 90, 0.0, 0.0, 0.05, 1.3)
    f = rule_relevant_checkpoint(_profile(tokens=[unk]), AdviseContext())
    assert f is not None and "[UNK]" in f.observed
    # With a big unlabeled pool the answer is continued pretraining.
    big = rule_relevant_checkpoint(_profile(unlabeled=50_000), AdviseContext(no_relevant_checkpoint=True))
    assert big is not None and "pretraining" in big.advice
    rec = recommend(_profile(), AdviseContext(no_relevant_checkpoint=True),
                    [said], ["minilm-l6", "mpnet-base"])
    assert rec.checkpoints == [] and "TF-IDF" in rec.approach


def test_team_size_rule_and_small_checkpoint_first() -> None:
    assert "team<3" in _fired(_profile(), AdviseContext(team_size=2))
    assert "team<3" not in _fired(_profile(), AdviseContext(team_size=3))
    p = _profile()
    ctx = AdviseContext(team_size=1)
    rec = recommend(p, ctx, [f for r in ALL_RULES if (f := r(p, ctx))], ["mpnet-base", "minilm-l6"])
    assert rec.checkpoints[0] == "minilm-l6"


def test_latency_critical_means_distillation_and_small_checkpoints() -> None:
    p = _profile()
    ctx = AdviseContext(latency_ms=30)
    fired = [f for r in ALL_RULES if (f := r(p, ctx))]
    assert "latency-critical" in [f.rule for f in fired]
    rec = recommend(p, ctx, fired, ["minilm-l6", "mpnet-base"])
    assert rec.checkpoints == ["minilm-l6"] and rec.distill and rec.strategy == "lora"
    relaxed = _fired(p, AdviseContext(latency_ms=200))
    assert "latency-budget" in relaxed and "latency-critical" not in relaxed
    assert not any(r.startswith("latency") for r in _fired(p))


def test_context_is_validated() -> None:
    with pytest.raises(ConfigError, match="latency_ms"):
        AdviseContext(latency_ms=0)
    with pytest.raises(ConfigError, match="team_size"):
        AdviseContext(team_size=0)


def test_class_balance_rules() -> None:
    tail = _profile(label_counts={"a": 400, "b": 30, "c": 70}, min_per_class=30, max_per_class=400,
                    imbalance_ratio=400 / 30, classes_under_50=["b"], n_classes=3)
    fired = _fired(tail)
    assert "long-tail" in fired and "imbalance" in fired
    rec = recommend(tail, AdviseContext(), [f for r in ALL_RULES if (f := r(tail, AdviseContext()))], [])
    assert rec.loss == "focal" and rec.class_weight is None and "--loss focal" in rec.commands[-1]
    # Imbalanced without a small class: class weights, plain cross-entropy.
    imb = _profile(min_per_class=60, max_per_class=400, imbalance_ratio=400 / 60)
    rec = recommend(imb, AdviseContext(), [f for r in ALL_RULES if (f := r(imb, AdviseContext()))], [])
    assert rec.loss == "ce" and rec.class_weight == "balanced"
    # Every class small and balanced: few examples, not a long tail.
    few = _profile(n=40, min_per_class=8, max_per_class=8, classes_under_50=list("abcde"))
    fired = _fired(few)
    assert "few-per-class" in fired and "long-tail" not in fired
    rec = recommend(few, AdviseContext(), [f for r in ALL_RULES if (f := r(few, AdviseContext()))], [])
    assert rec.strategy == "head" and rec.loss == "ce"


def test_unlabeled_pool_threshold() -> None:
    assert "continued-pretraining" in _fired(_profile(unlabeled=10_001))
    assert "pool-too-small" in _fired(_profile(unlabeled=10_000))
    assert not {"continued-pretraining", "pool-too-small"} & set(_fired(_profile()))


def test_detect_language() -> None:
    assert detect_language("The cat sat on the mat and it was happy with the food") == "en"
    assert detect_language("Der Hund ist nicht mit dem Ball auf der Straße und die Katze") == "de"
    assert detect_language("Le chat est dans la maison et il ne veut pas sortir pour le dîner") == "fr"
    assert detect_language("xyz 123") == "unknown"


# --------------------------------------------------------------------------- end to end on real text


def _frame(n_per: int = 12) -> pd.DataFrame:
    rows = []
    for i in range(n_per):
        rows.append({"text": f"The match was won by the home team in the final minute, game {i}.",
                     "label": "sport"})
        rows.append({"text": f"The bank said that profits were up for the year on strong sales, report {i}.",
                     "label": "business"})
    return pd.DataFrame(rows)


def test_end_to_end_defaults(tiny_bert: Path) -> None:
    adv = advise(_frame(), checkpoints=[str(tiny_bert)])
    assert adv.rules[:1] == ["labeled<1k"] and "stratified" in adv.rules
    p = adv.profile
    assert p.n == 24 and p.languages == {"en": 1.0} and p.duplicate_rate == 0.0
    assert len(p.tokens) == 1 and 10 < p.tokens[0].median_tokens < 40 and p.tokens[0].unk_rate == 0.0
    assert adv.recommendation.split == "stratified" and adv.recommendation.max_length == 64
    assert "recommendation:" in adv.table()
    json.dumps(adv.to_dict())


def test_end_to_end_duplicates_and_conflicts(tiny_bert: Path) -> None:
    df = _frame()
    # Row 0 again in upper case with the other label (a conflict), row 1 again with its own label.
    dup = pd.DataFrame([{"text": df.text[0].upper(), "label": "business"},
                        {"text": df.text[1], "label": "business"}])
    adv = advise(pd.concat([df, dup], ignore_index=True), checkpoints=[str(tiny_bert)])
    f = next(f for f in adv.findings if f.rule == "duplicates")
    assert "1 with conflicting labels" in f.observed
    assert adv.recommendation.dedupe and "--dedupe" in adv.recommendation.commands[-1]


def test_end_to_end_time_and_group_columns(tiny_bert: Path) -> None:
    df = _frame()
    df["when"] = pd.date_range("2024-01-01", periods=len(df), freq="D").astype(str)
    df["who"] = [f"user{i % 5}" for i in range(len(df))]
    adv = advise(df, columns=ColumnMap(time="when"), checkpoints=[str(tiny_bert)])
    assert "temporal" in adv.rules and adv.recommendation.split == "temporal"
    adv = advise(df, columns=ColumnMap(group="who"), checkpoints=[str(tiny_bert)])
    assert "group" in adv.rules and adv.recommendation.split == "group"


def test_end_to_end_long_texts(tiny_bert: Path) -> None:
    df = _frame()
    long = df.copy()
    long["text"] = long["text"] + " " + " ".join(["more words about the subject"] * 30)
    adv = advise(long, checkpoints=[str(tiny_bert)])
    f = next(f for f in adv.findings if f.rule == "truncation")
    assert "over 128" in f.observed and adv.recommendation.max_length > 128
    longer = df.copy()
    longer["text"] = longer["text"] + " " + " ".join(["more words about the subject"] * 120)
    adv = advise(longer, checkpoints=[str(tiny_bert)])
    assert "longer-than-checkpoint" in adv.rules
    assert adv.recommendation.max_length == adv.profile.tokens[0].max_length


def test_end_to_end_languages(tiny_bert: Path) -> None:
    df = _frame()
    fr = df.copy()
    fr["text"] = ["Le match est gagné par une équipe dans la dernière minute et le public est content"
                  ] * len(df)
    adv = advise(pd.concat([df, fr], ignore_index=True), checkpoints=[str(tiny_bert)])
    assert "multilingual" in adv.rules and "no-relevant-checkpoint" in adv.rules
    assert adv.profile.languages["fr"] == pytest.approx(0.5, abs=0.15)


def test_end_to_end_multilabel(tiny_bert: Path) -> None:
    df = _frame()
    df["label"] = ["sport|news", "business"] * (len(df) // 2)
    adv = advise(df, columns=ColumnMap(label_sep="|"), checkpoints=[str(tiny_bert)])
    assert "multilabel" in adv.rules and adv.profile.task == "multilabel"


def test_same_validation_as_train(tmp_path: Path) -> None:
    bad = tmp_path / "bad.csv"
    pd.DataFrame({"text": ["a", " ", "c"], "label": ["x", "y", "x"]}).to_csv(bad, index=False)
    with pytest.raises(DataError, match="row 2"):
        advise(bad, checkpoints=[])


def test_cli_advise_with_unlabeled_pool(tmp_path: Path, tiny_bert: Path,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    data = tmp_path / "d.csv"
    _frame().to_csv(data, index=False)
    pool = tmp_path / "pool.csv"
    pd.DataFrame({"body": [f"unlabeled text {i}" for i in range(10_001)]}).to_csv(pool, index=False)
    rc = main(["advise", "--data", str(data), "--unlabeled", str(pool), "--unlabeled-text-column", "body",
               "--latency-ms", "20", "--team-size", "2", "--checkpoints", str(tiny_bert), "--json"])
    assert rc == 0
    d = json.loads(capsys.readouterr().out)
    rules = [f["rule"] for f in d["findings"]]
    assert {"continued-pretraining", "latency-critical", "team<3"} <= set(rules)
    assert d["profile"]["unlabeled"] == 10_001 and d["recommendation"]["continued_pretraining"]
    rc = main(["advise", "--data", str(data), "--checkpoints", str(tiny_bert)])
    assert rc == 0 and "recommendation:" in capsys.readouterr().out

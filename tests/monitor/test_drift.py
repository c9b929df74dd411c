"""Drift statistics and the `monitor` command on synthetic streams with known shifts."""

from __future__ import annotations

import json

import numpy as np
import pytest
from monitor_synth import LABELS, synthetic_profile, synthetic_records

from transferops.cli.main import main
from transferops.errors import ConfigError, NotFittedError
from transferops.monitor.api import monitor
from transferops.monitor.drift import DriftConfig, DriftMonitor, kl, psi, psi_noise
from transferops.monitor.store import Store


def test_psi_and_kl_basics():
    a = np.array([10, 20, 30, 40])
    assert psi(a, a) == pytest.approx(0.0)
    # an empty bin is not "impossible": 1 live item where the reference had none stays small
    assert psi(np.array([50, 50, 0]), np.array([50, 49, 1])) < 0.05
    assert kl(a, a) == pytest.approx(0.0)
    shifted = np.array([40, 30, 20, 10])
    # by hand: sum((a-e) ln(a/e)) over smoothed shares ~.1 .2 .3 .4 vs ~.4 .3 .2 .1
    e, s = (a + 0.5) / (a.sum() + 2), (shifted + 0.5) / (shifted.sum() + 2)  # add-½ smoothing
    assert psi(a, shifted) == pytest.approx(float(np.sum((s - e) * np.log(s / e))))
    assert psi(a, shifted) > 0.25
    assert psi(a, shifted) == pytest.approx(psi(shifted, a))  # PSI is symmetric; KL is not
    assert kl(np.array([1, 1]), np.array([1, 3])) != pytest.approx(kl(np.array([1, 3]), np.array([1, 1])))
    # noise floor of two samples of 100 over 4 non-empty bins
    assert psi_noise(np.array([25, 25, 25, 25]), np.array([30, 20, 25, 25])) == pytest.approx(3 * 0.02)


def test_config_validates_fields():
    with pytest.raises(ConfigError, match="retrain"):
        DriftConfig(warn=0.3, retrain=0.2)
    with pytest.raises(ConfigError, match="warn"):
        DriftConfig(warn=-1)
    with pytest.raises(NotFittedError):
        DriftMonitor().calculate(None)  # type: ignore[arg-type]


def _frame(recs):
    import pandas as pd

    return pd.DataFrame(recs)


def test_same_distribution_stays_ok():
    mon = DriftMonitor().fit(synthetic_profile())
    recs = synthetic_records(1000, seed=7)
    rep = mon.calculate(_frame(recs), sketches=np.asarray([r["sketch"] for r in recs]))
    assert rep.status == "ok", rep.summary()
    for s in rep.signals:
        assert s.value < 0.1, s
    assert rep.signal("class_psi").detail["psi_raw"] < 0.1


def test_shifted_stream_reaches_retrain_on_the_right_signals():
    mon = DriftMonitor().fit(synthetic_profile())
    # Sport takes over, confidence collapses, texts get long, the embedding moves off-domain.
    recs = synthetic_records(1000, seed=8, class_p=[0.05, 0.05, 0.05, 0.8, 0.05], conf_beta=(2, 3),
                             chars_mean=900, sketch_shift=0.3)
    rep = mon.calculate(_frame(recs), sketches=np.asarray([r["sketch"] for r in recs]))
    assert rep.status == "retrain"
    for name in ("class_psi", "confidence_psi", "feature_psi:n_chars", "embedding"):
        assert rep.signal(name).status == "retrain", rep.summary()
    # Unshifted features are not blamed.
    assert rep.signal("feature_psi:n_tokens").status == "ok"
    assert rep.class_share["sport"] > 0.7
    assert rep.high_confidence_share < rep.reference_high_confidence_share
    assert rep.signal("class_psi").detail["kl"] > 0.25
    assert rep.exit_code == 4


def test_only_class_mix_shift_is_a_warn_or_retrain_on_class_psi_alone():
    mon = DriftMonitor().fit(synthetic_profile())
    recs = synthetic_records(2000, seed=9, class_p=[0.1, 0.1, 0.2, 0.4, 0.2])
    rep = mon.calculate(_frame(recs))
    assert rep.triggered == ["class_psi"]
    assert rep.signal("class_psi").status in ("warn", "retrain")


def test_thresholds_are_configurable():
    recs = synthetic_records(2000, seed=9, class_p=[0.1, 0.1, 0.2, 0.4, 0.2])
    value = DriftMonitor().fit(synthetic_profile()).calculate(_frame(recs)).signal("class_psi").value
    strict = DriftMonitor(DriftConfig(warn=value / 4, retrain=value / 2)).fit(synthetic_profile())
    lax = DriftMonitor(DriftConfig(warn=value * 2, retrain=value * 4)).fit(synthetic_profile())
    assert strict.calculate(_frame(recs)).status == "retrain"
    assert lax.calculate(_frame(recs)).status == "ok"


def test_feedback_accuracy_drop_is_detected():
    import pandas as pd

    mon = DriftMonitor().fit(synthetic_profile())  # reference accuracy 0.9
    recs = synthetic_records(300, seed=3)
    rng = np.random.default_rng(0)
    good = pd.DataFrame({"predicted": [r["label"] for r in recs],
                         "true": [r["label"] if rng.random() < 0.9 else "tech" for r in recs]})
    bad = pd.DataFrame({"predicted": [r["label"] for r in recs],
                        "true": [r["label"] if rng.random() < 0.6 else "__wrong__" for r in recs]})
    ok = mon.calculate(_frame(recs), feedback=good)
    assert ok.signal("accuracy_drop").status == "ok"
    drop = mon.calculate(_frame(recs), feedback=bad)
    s = drop.signal("accuracy_drop")
    assert s.status == "retrain" and s.value == pytest.approx(0.9 - drop.accuracy)
    assert drop.accuracy < 0.7 and set(drop.recall) >= set(LABELS) - {"tech"}
    few = mon.calculate(_frame(recs), feedback=bad.head(10))  # below min_feedback: reported, not graded
    assert few.accuracy is not None
    with pytest.raises(KeyError):
        few.signal("accuracy_drop")


def test_monitor_reads_store_and_feedback(profile_dir, tmp_path):
    st = Store(tmp_path / "m.db")
    recs = synthetic_records(400, seed=4)
    st.insert_predictions(recs)
    for r in recs[:100]:
        st.add_feedback(r["id"], "__wrong__" if r["confidence"] < 0.85 else r["label"])
    res = monitor(profile_dir, db=st, window="1d")
    rep = res.report
    assert rep.n == 400 and rep.n_feedback == 100
    assert rep.signal("accuracy_drop").status in ("warn", "retrain")
    assert rep.review_rate == pytest.approx(np.mean([r["route"] == "review" for r in recs]))
    assert len(res.timeline) > 1 and "class_psi" in res.timeline.columns
    assert monitor(profile_dir, db=st, last=50).report.n == 50
    # A window that ends before the data starts: no rows, unknown status, exit 0.
    empty = monitor(profile_dir, db=st, window="1d", now=0.0).report
    assert empty.n == 0 and empty.status == "unknown" and empty.exit_code == 0


def test_cli_monitor_exit_codes_json_and_report(profile_dir, tmp_path, capsys):
    db = tmp_path / "m.db"
    st = Store(db)
    st.insert_predictions(synthetic_records(600, seed=5))
    assert main(["monitor", "--model", str(profile_dir), "--db", str(db), "--window", "1d"]) == 0
    assert "status: OK" in capsys.readouterr().out
    st.insert_predictions(synthetic_records(3000, seed=6, class_p=[0.02, 0.02, 0.02, 0.9, 0.04],
                                            conf_beta=(2, 3), sketch_shift=0.4))
    report = tmp_path / "r.html"
    code = main(["monitor", "--model", str(profile_dir), "--db", str(db), "--last", "3000", "--json",
                 "--report", str(report)])
    assert code == 4
    data = json.loads(capsys.readouterr().out)
    assert data["status"] == "retrain" and "class_psi" in data["triggered"] and data["timeline"]
    assert 'data-chart="psi"' in report.read_text()
    # Lax thresholds turn the same data into a warning or ok.
    code = main(["monitor", "--model", str(profile_dir), "--db", str(db), "--last", "3000", "--warn", "5",
                 "--retrain", "9", "--accuracy-warn", "0.5", "--accuracy-retrain", "0.9"])
    assert code == 0
    assert main(["monitor", "--model", str(profile_dir), "--db", str(db), "--last", "0"]) == 2


def test_cli_refuses_a_missing_sqlite_store(profile_dir, tmp_path, capsys):
    missing = tmp_path / "typo.db"
    assert main(["monitor", "--model", str(profile_dir), "--db", str(missing)]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert not missing.exists()
    assert main(["registry", "list", "--db", str(missing)]) == 2

"""Images end to end on real handwritten digits (PNG folders): train → evaluate (+ worst-image grid) → export
(ONNX fp32 parity + static int8) → predict a folder → monitor (image input drift) → serve (real uvicorn:
multipart + base64, batching, review routing, prediction log, 4xx for bad images)."""

from __future__ import annotations

import base64
import json
import sqlite3
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

import transferops
from transferops.cli.main import main


def test_train_summary_and_manifest(image_run: Path) -> None:
    m = json.loads((image_run / "transferops.json").read_text())
    assert m["kind"] == "image_model" and m["modality"] == "image" and m["strategy"]["name"] == "head"
    assert m["labels"] == ["digit_0", "digit_1", "digit_2"]
    assert {c["name"] for c in m["search"]["leaderboard"]} == {"baseline", "head"}  # the baseline is always trained
    assert "pixel_logreg" in m["baseline"] and m["image"]["bn_momentum"] == 0.1
    assert sum(m["splits"]["sizes"].values()) == 42
    model = transferops.load(image_run)
    test = model.split("test")
    pred = model.predict(test["text"].tolist())
    assert len(pred) == len(test) and set(pred) <= set(m["labels"])
    # the test split is write-once
    assert not (image_run / "data" / "test.parquet").stat().st_mode & 0o222


def test_evaluate_report_and_worst_grid(image_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    report = tmp_path / "report.html"
    assert main(["evaluate", "--model", str(image_run), "--report", str(report), "--bootstrap", "20", "-q"]) == 0
    out = capsys.readouterr().out
    assert "image_brightness" in out and "weakest classes" in out
    grid = report.with_suffix(".worst.png")
    assert report.exists() and grid.exists() and Image.open(grid).size[0] > 100
    html = report.read_text()
    # the cards compare with the image run's own (pixel) baseline, not a missing TF-IDF one
    assert "vs pixel baseline" in html and "pixel_logreg" in html


def test_export_predict_monitor(image_run: Path, digits_folder: Path, tmp_path: Path,
                                capsys: pytest.CaptureFixture[str]) -> None:
    exp = tmp_path / "exp"
    assert main(["export", "--model", str(image_run), "--out", str(exp), "-q"]) == 0
    rep = json.loads((exp / "image_export.json").read_text())
    assert rep["parity"]["argmax_agreement"] == 1.0 and rep["parity"]["max_abs_logit_diff"] < 1e-3
    assert rep["int8"]["method"] == "static QDQ" and rep["int8"]["bytes"] < rep["fp32"]["bytes"]
    assert "accuracy_drop" in rep["int8"]
    onnx_model = transferops.load(exp)
    assert onnx_model.runtime == "onnx" and onnx_model.variant == "int8"
    files = sorted(str(f) for f in digits_folder.rglob("*.png"))[:6]
    torch_p = transferops.load(image_run).predict_proba(files)
    fp32_p = transferops.load(exp, variant="fp32").predict_proba(files)
    np.testing.assert_allclose(torch_p, fp32_p, atol=1e-4)
    # the int8 gate: a run that must beat fp32 by 100 points fails (exit 1), keeps fp32 and serves it
    strict = tmp_path / "strict"
    assert main(["export", "--model", str(image_run), "--out", str(strict), "--max-drop", "-100", "-q"]) == 1
    failed = json.loads((strict / "image_export.json").read_text())
    assert failed["int8_failed"]["failed"] and "int8" not in failed
    assert not (strict / "model.int8.onnx").exists() and transferops.load(strict).variant == "fp32"

    preds = tmp_path / "preds.csv"
    assert main(["predict", "--model", str(exp), "--input", str(digits_folder), "--output", str(preds), "-q"]) == 0
    df = pd.read_csv(preds)
    assert len(df) == 42 and set(df.columns) >= {"path", "label", "confidence", "p_digit_0"}

    # input drift: the same digits darkened and shrunk are flagged; the validation images themselves are not
    shifted = tmp_path / "shifted"
    shifted.mkdir()
    for k, f in enumerate(files * 3):
        im = Image.open(f).convert("RGB").resize((20, 20))
        Image.fromarray((np.asarray(im) * 0.3 + 120).astype(np.uint8)).save(shifted / f"{k}.png")
    capsys.readouterr()
    assert main(["monitor", "--model", str(image_run), "--images", str(shifted), "--json"]) == 4
    drift = json.loads(capsys.readouterr().out)
    assert {"width", "brightness", "contrast"} <= set(drift["alerts"])
    same = tmp_path / "same"
    same.mkdir()
    for i, f in enumerate(transferops.load(image_run).split("validation")["text"]):
        Image.open(f).save(same / f"{i}.png")
    assert main(["monitor", "--model", str(image_run), "--images", str(same), "--json"]) == 0


@pytest.mark.server
def test_serve_images_over_http(image_run: Path, digits_folder: Path, tmp_path: Path) -> None:
    import httpx

    from server_testing import running
    from transferops.deploy.server import create_app
    from transferops.deploy.settings import ServeSettings

    db = tmp_path / "log.db"
    app = create_app(ServeSettings(models={"img": str(image_run)}, db_url=f"sqlite:///{db}", review_threshold=0.99))
    files = sorted(digits_folder.rglob("*.png"))[:3]
    with running(app) as url, httpx.Client(base_url=url, timeout=60) as c:
        r = c.post("/v1/models/img/images", files=[("files", (f.name, f.read_bytes(), "image/png")) for f in files])
        assert r.status_code == 200, r.text
        preds = r.json()["predictions"]
        assert len(preds) == 3 and all(p["route"] in ("auto", "review") for p in preds)
        want = transferops.load(image_run).predict([str(f) for f in files])
        assert [p["label"] for p in preds] == want
        b64 = [base64.b64encode(f.read_bytes()).decode() for f in files]
        r2 = c.post("/v1/models/img/images/base64", json={"images": b64, "ids": ["a", "b", "c"]})
        assert r2.status_code == 200 and [p["id"] for p in r2.json()["predictions"]] == ["a", "b", "c"]
        assert [p["label"] for p in r2.json()["predictions"]] == want
        # bad inputs are 4xx naming the item
        bad = c.post("/v1/models/img/images", files=[("files", ("x.png", files[0].read_bytes(), "image/png")),
                                                       ("files", ("y.jpg", b"not an image", "image/jpeg"))])
        assert bad.status_code == 422 and bad.json()["detail"][0]["loc"] == ["body", "files", 1]
        assert c.post("/v1/models/img/images/base64", json={"images": ["%%%"]}).status_code == 422
        trunc = base64.b64encode(files[0].read_bytes()[:60]).decode()
        assert c.post("/v1/models/img/images/base64", json={"images": [trunc]}).status_code == 422
        assert c.post("/v1/models/nope/images/base64", json={"images": b64}).status_code == 404
        # the JSON text route never reads server paths for an image model
        t = c.post("/v1/models/img/predict", json={"texts": [str(files[0])]})
        assert t.status_code == 422 and "takes image input" in t.text and "/v1/models/img/images" in t.text
    with sqlite3.connect(db) as con:
        rows = con.execute("select text, route from predictions").fetchall()
    assert len(rows) == 6 and all(r[0].startswith("image:sha1:") for r in rows)
    assert {r[1] for r in rows} <= {"auto", "review"}


def test_calibrate_an_image_model(image_run: Path, tmp_path: Path) -> None:
    import shutil

    run = tmp_path / "run"
    shutil.copytree(image_run, run)
    assert main(["calibrate", "--model", str(run), "--no-test", "-q"]) == 0
    m = json.loads((run / "transferops.json").read_text())
    assert m["calibration"]["temperature"] > 0 and transferops.load(run).temperature == m["calibration"]["temperature"]

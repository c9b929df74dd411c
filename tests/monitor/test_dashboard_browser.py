"""The dashboard in headless Chromium: every chart is drawn, status shown; screenshot saved."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from monitor_synth import synthetic_records

from transferops.cli.main import main
from transferops.monitor.dashboard import CHARTS
from transferops.monitor.store import Store

pytestmark = pytest.mark.browser
CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update"]


@pytest.fixture
def page():
    sync_api = pytest.importorskip("playwright.sync_api")
    if not Path(CHROMIUM).exists():
        pytest.skip(f"{CHROMIUM} is missing (apt-get install -y chromium)")
    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        pg = browser.new_page(viewport={"width": 1300, "height": 1000})
        yield pg
        browser.close()


def _check_page(pg, shot: Path, expect_status: str) -> None:
    for name in CHARTS:
        svg = pg.locator(f'svg[data-chart="{name}"]')
        assert svg.count() == 1, name
        assert svg.is_visible(), name
        box = svg.bounding_box()
        assert box and box["width"] > 200 and box["height"] > 100, (name, box)
        assert svg.locator("polyline.series").count() >= 1, f"chart {name} has no line"
    assert pg.locator('svg[data-chart="class-mix"] polyline.series').count() == 5
    assert pg.locator('svg[data-chart="psi"] line.threshold').count() == 2
    assert pg.locator("#status").get_attribute("data-status") == expect_status
    assert pg.locator("#signals tr").count() > 3
    pg.screenshot(path=str(shot), full_page=True)
    assert shot.stat().st_size > 10_000


def test_report_file_renders_every_chart(page, profile_dir, tmp_path):
    db = tmp_path / "m.db"
    st = Store(db)
    ok = synthetic_records(800, seed=11, ts0=1_700_000_000.0)
    drifted = synthetic_records(800, seed=12, ts0=1_700_003_000.0, class_p=[0.05, 0.05, 0.05, 0.8, 0.05],
                                conf_beta=(2, 3), sketch_shift=0.3)
    st.insert_predictions(ok + drifted)
    for r in (ok + drifted)[::8]:
        st.add_feedback(r["id"], r["label"] if r["confidence"] > 0.6 else "tech")
    report = tmp_path / "report.html"
    code = main(["monitor", "--model", str(profile_dir), "--db", str(db), "--window", "36500d",
                 "--report", str(report), "--buckets", "12"])
    assert code == 4
    page.goto(report.as_uri())
    shot = tmp_path / "dashboard.png"
    _check_page(page, shot, "retrain")
    keep = os.environ.get("TRANSFEROPS_SCREENSHOT_DIR")
    if keep:
        shutil.copy(shot, Path(keep) / "monitor_dashboard.png")


@pytest.mark.server
def test_served_dashboard_renders(page, tiny_run, tmp_path, bbc_small):
    import httpx
    from monitor_server import running

    from transferops.deploy.server import ServeSettings, create_app

    db = f"sqlite:///{tmp_path / 'log.db'}"
    app = create_app(ServeSettings(models={"news": str(tiny_run)}, db_url=db, review_threshold=0.21))
    texts = [str(t) for t in bbc_small["text"]]
    with running(app) as url, httpx.Client(base_url=url, timeout=60) as c:
        preds = []
        for i in range(0, 120, 20):
            preds += c.post("/v1/models/news/predict", json={"texts": texts[i:i + 20]}).json()["predictions"]
        for p in preds[:40]:
            assert c.post("/v1/feedback", json={"prediction_id": p["prediction_id"],
                                                "label": "sport"}).status_code == 200
        page.goto(f"{url}/dashboard?last=1000&buckets=6")
        status = page.locator("#status").get_attribute("data-status")
        assert status in ("ok", "warn", "retrain")
        _check_page(page, tmp_path / "served.png", status)
    keep = os.environ.get("TRANSFEROPS_SCREENSHOT_DIR")
    if keep:
        shutil.copy(tmp_path / "served.png", Path(keep) / "monitor_dashboard_served.png")

"""The server's shape (issue 13): settings composed of per-part objects, routers per concern, features
that are not configured are not mounted, and the server's modules stay off the CLI. Cheap: nothing
here loads a model or starts a server."""

from __future__ import annotations

import ast
import inspect
import subprocess
import sys
from pathlib import Path

import pytest

import transferops
from transferops.deploy.batching import BatchSettings
from transferops.deploy.settings import ServeSettings
from transferops.errors import ConfigError

SRC = Path(transferops.__file__).parent


def test_flat_flags_land_in_their_part_and_come_back_flat(tmp_path: Path) -> None:
    s = ServeSettings(models={"m": str(tmp_path)}, max_batch_size=8, max_wait_ms=0, threads=2,
                      max_body_bytes=1000, max_texts_per_request=5, admin_token="Zq8-kLw3_Rt5vBn2Yx",
                      ab={"a": str(tmp_path), "b": str(tmp_path)}, ab_split="90/10", db_url="sqlite:///x.db",
                      log_mode="async", model_roots=[str(tmp_path)])
    assert s.hub.batching == BatchSettings(max_batch_size=8, max_wait_ms=0, queue_size=4096, adaptive_wait=True)
    assert s.hub.threads == 2 and s.edge.max_body_bytes == 1000 and s.predict.max_texts_per_request == 5
    assert s.experiments.weights == pytest.approx([0.9, 0.1]) and s.experiments.experiment == "default"
    assert s.monitoring.enabled and s.monitoring.log_mode == "async"
    assert s.served == {"m": str(tmp_path), "a": str(tmp_path), "b": str(tmp_path)}
    assert tmp_path.resolve() in s.model_roots and tmp_path.resolve().parent in s.model_roots
    flat = s.to_dict()
    assert flat["admin_token"] == "***" and flat["max_batch_size"] == 8 and flat["db_url"] == "sqlite:///x.db"
    # the flat form is the constructor's: rebuilding from it gives the same settings
    again = ServeSettings(**{**flat, "admin_token": "Zq8-kLw3_Rt5vBn2Yx"})
    assert again == s


@pytest.mark.parametrize("flags, field", [
    ({"max_batch_sise": 8}, "did you mean 'max_batch_size'"),
    ({"max_wait_ms": -1}, "max_wait_ms"),
    ({"queue_size": 0}, "queue_size"),
    ({"max_headers": 0}, "max_headers"),
    ({"inference_workers": 0}, "inference_workers"),
    ({"review_threshold": 0.5, "target_auto_accuracy": 0.9}, "set one, not both"),
    ({"log_mode": "sometimes"}, "log_mode"),
    ({"ab": {"a": "x", "b": "y"}, "ab_key": "cookie:uid"}, "ab_key"),
    ({"ab": {"m": "x", "b": "y"}}, "clash"),
    ({"max_texts_per_request": 10, "queue_size": 5}, "exceeds queue_size"),
    ({"port": 70000}, "port"),
])
def test_each_part_validates_its_own_fields(flags: dict, field: str) -> None:
    with pytest.raises(ConfigError, match=field):
        ServeSettings(**{"models": {"m": "runs/m"}, **flags})


def test_settings_build_without_fastapi() -> None:
    """Settings are plain data: importing them must not pull in the web stack."""
    code = ("import sys, transferops.deploy.settings as s; s.ServeSettings(models={'m': 'x'}); "
            "print(sorted(m for m in ('fastapi', 'starlette', 'uvicorn') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_unconfigured_features_are_not_mounted(tmp_path: Path) -> None:
    from transferops.deploy.server import create_app

    bare = create_app(ServeSettings(models={"m": str(tmp_path)}))
    full = create_app(ServeSettings(models={"m": str(tmp_path)}, db_url=f"sqlite:///{tmp_path / 'x.db'}",
                                    ab={"a": str(tmp_path), "b": str(tmp_path)}, experiment="e1"))
    feature_routes = {"/v1/experiments/{experiment}/predict", "/v1/outcomes", "/v1/feedback", "/dashboard",
                      "/v1/monitor/{name}", "/admin/champion"}
    always = {"/healthz", "/readyz", "/v1/models", "/v1/models/{name}", "/v1/models/{name}/predict",
              "/admin/models", "/admin/models/{name}", "/admin/adapters/{name}"}
    bare_paths, full_paths = set(bare.openapi()["paths"]), set(full.openapi()["paths"])
    assert always <= bare_paths and not feature_routes & bare_paths
    assert (always | feature_routes) <= full_paths


def test_admin_routes_take_the_admin_dependency() -> None:
    """Every /admin route has AdminDep in its signature (no hand-called token check left)."""
    from transferops.deploy.http import require_admin
    from transferops.deploy.routers import admin
    from transferops.monitor import server_ext as monitoring

    routes = [r for router in (admin.router, monitoring.router) for r in router.routes
              if getattr(r, "path", "").startswith("/admin")]
    assert len(routes) >= 6
    for r in routes:
        calls = [d.call for d in r.dependant.dependencies]  # type: ignore[attr-defined]
        assert require_admin in calls, r.path  # type: ignore[attr-defined]


def test_app_factory_is_short_and_the_server_stays_off_the_cli() -> None:
    from transferops.deploy.server import create_app

    assert len(inspect.getsource(create_app).splitlines()) <= 60
    files = [SRC / "deploy" / "server.py", SRC / "deploy" / "http.py", SRC / "deploy" / "settings.py",
             *(SRC / "deploy" / "routers").glob("*.py"), SRC / "abtest" / "server_ext.py",
             SRC / "monitor" / "server_ext.py"]
    for f in files:
        tree = ast.parse(f.read_text(encoding="utf-8"))
        imported = {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
        imported |= {n.module or "" for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
        assert not any(m.startswith("transferops.cli") for m in imported), f
        assert "SERVER_EXTENSIONS" not in f.read_text(encoding="utf-8"), f

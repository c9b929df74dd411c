"""The server's OpenAPI schema (/docs) documents the monitoring and A/B routes too."""

from __future__ import annotations

from pathlib import Path

from transferops.deploy.server import ServeSettings, create_app


def test_openapi_includes_extension_routes(tiny_run: Path, tmp_path: Path) -> None:
    app = create_app(ServeSettings(models={"m": str(tiny_run)}, db_url=f"sqlite:///{tmp_path / 'p.db'}"))
    paths = app.openapi()["paths"]
    for route in ("/v1/models/{name}/predict", "/v1/feedback", "/v1/outcomes", "/dashboard"):
        assert route in paths, route

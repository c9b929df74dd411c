"""Schemathesis fuzzes the real server's OpenAPI (issue 12): with and without a database, with and
without an admin token; every generated request must get no 5xx and a response that matches the
schema. Examples per operation are limited to keep the runtime modest."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from transferops.deploy.server import ServeSettings, create_app

from .conftest import ADMIN_TOKEN
from .deploy_helpers import running

pytestmark = pytest.mark.server
schemathesis = pytest.importorskip("schemathesis", reason="pip install -e '.[dev]' (schemathesis)")

EXAMPLES = 5


#: (database, admin token on the server, requests carry the token): every configuration a user can start.
CONFIGS = {"no-db, no-token": (False, False, False), "db+token, anonymous": (True, True, False),
           "db+token, admin": (True, True, True), "no-db, token, admin": (False, True, True)}


@pytest.fixture(params=list(CONFIGS), scope="module")
def fuzz_server(request: pytest.FixtureRequest, tiny_export: Path, tmp_path_factory: pytest.TempPathFactory
                ) -> Iterator[dict[str, Any]]:
    db, with_token, as_admin = CONFIGS[request.param]
    token = ADMIN_TOKEN if with_token else None
    settings = ServeSettings(models={"m": str(tiny_export)}, admin_token=token,
                             db_url=f"sqlite:///{tmp_path_factory.mktemp('fuzz') / 'f.db'}" if db else None,
                             model_roots=[str(tmp_path_factory.mktemp("fuzz-roots"))])
    with running(create_app(settings)) as url:
        yield {"url": url, "headers": {"Authorization": f"Bearer {token}"} if as_admin else {}}


def test_fuzz_openapi_no_server_errors_and_schema_conformance(fuzz_server: dict[str, Any]) -> None:
    from hypothesis import HealthCheck, given, settings
    from schemathesis.checks import not_a_server_error
    from schemathesis.specs.openapi.checks import response_schema_conformance

    url = fuzz_server["url"]
    schema = schemathesis.openapi.from_url(f"{url}/openapi.json")
    operations = [r.ok() for r in schema.get_all_operations()]
    assert len(operations) >= 8
    failures: list[str] = []
    for op in operations:
        @settings(max_examples=EXAMPLES, deadline=None, database=None, derandomize=True,
                  suppress_health_check=list(HealthCheck))
        @given(case=op.as_strategy())
        def run(case: Any) -> None:
            case.call_and_validate(base_url=url, headers=fuzz_server["headers"], timeout=30,
                                   checks=[not_a_server_error, response_schema_conformance])

        try:
            run()
        except Exception as exc:  # collect every operation's failure, then fail once
            failures.append(f"{op.method.upper()} {op.path}: {str(exc)[:600]}")
    assert not failures, "\n\n".join(failures)

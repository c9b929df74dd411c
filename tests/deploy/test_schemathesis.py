"""Schemathesis fuzzes the real server's OpenAPI (issue 12): with and without a database, with and
without an admin token, with a text and a tabular model loaded (the rows route is fuzzed against both, and
with rows that carry the table's own columns); every generated request must get no 5xx and a response that
matches the schema. Examples per operation are limited to keep the runtime modest."""

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


@pytest.fixture(scope="module")
def tiny_table(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tabular model (trees only, 120 random rows: numeric, categorical, datetime) for the rows route."""
    pytest.importorskip("skops")
    import numpy as np
    import pandas as pd

    from transferops.tabular.api import TabularConfig, train_tabular

    rng = np.random.default_rng(0)
    n = 120
    df = pd.DataFrame({"amount": rng.normal(100, 30, n), "kind": rng.choice(["a", "b", "c"], n),
                       "opened": pd.Timestamp("2024-01-01") + pd.to_timedelta(rng.integers(0, 300, n), unit="D")})
    df["label"] = np.where(df["amount"] + rng.normal(0, 20, n) > 100, "yes", "no")
    out = tmp_path_factory.mktemp("fuzz-table") / "t"
    train_tabular(df, out=out, label_column="label",
                  config=TabularConfig(models=("trees",), compare_random_split=False, tree_iterations=20))
    return out


#: Models the fuzzer also names in the path of these routes (random names are mostly 404s).
NAMED = {"/v1/models/{name}/rows": ("t", "m"), "/v1/models/{name}/predict": ("t", "m")}


@pytest.fixture(params=list(CONFIGS), scope="module")
def fuzz_server(request: pytest.FixtureRequest, tiny_export: Path, tiny_table: Path,
                tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    db, with_token, as_admin = CONFIGS[request.param]
    token = ADMIN_TOKEN if with_token else None
    settings = ServeSettings(models={"m": str(tiny_export), "t": str(tiny_table)}, admin_token=token,
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
        for name in (None, *NAMED.get(op.path, ())):
            def runner(name: str | None, op: Any = op) -> Any:
                @settings(max_examples=EXAMPLES, deadline=None, database=None, derandomize=True,
                          suppress_health_check=list(HealthCheck))
                @given(case=op.as_strategy())
                def run(case: Any) -> None:
                    if name is not None:  # the same generated body against a loaded model (tabular or text)
                        case.path_parameters = {**(case.path_parameters or {}), "name": name}
                    case.call_and_validate(base_url=url, headers=fuzz_server["headers"], timeout=30,
                                           checks=[not_a_server_error, response_schema_conformance])

                return run

            try:
                runner(name)()
            except Exception as exc:  # collect every operation's failure, then fail once
                failures.append(f"{op.method.upper()} {op.path} (name={name}): {str(exc)[:600]}")
    assert not failures, "\n\n".join(failures)


def test_fuzz_rows_with_the_schema_columns(fuzz_server: dict[str, Any]) -> None:
    """Rows with the tabular model's own columns and any JSON value in them (the schemathesis bodies rarely
    name the columns): every answer is a 200 or a 422, never a 5xx."""
    import httpx
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st

    value = st.one_of(st.none(), st.booleans(), st.integers(min_value=-(10 ** 400), max_value=10 ** 400),
                      st.floats(allow_nan=False), st.text(max_size=12), st.lists(st.integers(), max_size=2),
                      st.dictionaries(st.text(max_size=3), st.integers(), max_size=1),
                      st.sampled_from(["a", "b", "zzz", "2024-05-01", "1e9", "nan", ""]))
    row = st.fixed_dictionaries({"amount": value, "kind": value, "opened": value},
                                optional={"extra": value})
    seen: set[int] = set()
    with httpx.Client(base_url=fuzz_server["url"], timeout=30) as c:
        @settings(max_examples=40, deadline=None, database=None, derandomize=True,
                  suppress_health_check=list(HealthCheck))
        @given(rows=st.lists(row, min_size=1, max_size=3))
        def run(rows: list[dict[str, Any]]) -> None:
            r = c.post("/v1/models/t/rows", json={"rows": rows})
            assert r.status_code in (200, 422), (rows, r.status_code, r.text)
            seen.add(r.status_code)

        run()
        ok = c.post("/v1/models/t/rows", json={"rows": [{"amount": 1e308, "kind": None, "opened": "2024-05-01"}]})
        assert ok.status_code == 200, ok.text
    assert seen == {200, 422}  # the generated rows reached both the answer and the refusal

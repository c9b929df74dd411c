"""Monitor fixtures: a store on SQLite and (when TRANSFEROPS_TEST_PG_URL is set) PostgreSQL, and a
synthetic reference profile with known numbers."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from monitor_synth import synthetic_profile

from transferops.monitor.store import Store


def _pg_url() -> str | None:
    return os.environ.get("TRANSFEROPS_TEST_PG_URL") or None


def _fresh_pg_store(url: str) -> Store:
    """A private schema-less database per test would need CREATE DATABASE; instead drop our tables."""
    st = Store(url, create=False)
    st.metadata.drop_all(st.engine)
    st.create_all()
    return st


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    """The same tests run against SQLite and PostgreSQL (skipped only when the URL is unset)."""
    if request.param == "sqlite":
        st = Store(tmp_path / "monitor.db")
    else:
        url = _pg_url()
        if url is None:
            pytest.skip("TRANSFEROPS_TEST_PG_URL is not set (scripts/start_postgres.sh starts a server)")
        st = _fresh_pg_store(url)
    yield st
    st.dispose()


@pytest.fixture
def sqlite_store(tmp_path: Path) -> Iterator[Store]:
    st = Store(tmp_path / "monitor.db")
    yield st
    st.dispose()


@pytest.fixture
def profile_dir(tmp_path: Path) -> Path:
    """A folder holding only a reference profile (enough for `monitor --model DIR`)."""
    from transferops.monitor.profile import save_profile

    d = tmp_path / "model"
    d.mkdir()
    save_profile(d, synthetic_profile())
    return d

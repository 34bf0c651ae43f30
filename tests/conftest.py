"""Fixtures shared by every test module: a real PostgreSQL for the storage tests.

``pg_cluster`` (session) starts a throwaway cluster the first time a test asks for it (tests/_postgres.py: installed
from the Debian package where missing, run in a temporary folder on a Unix socket, stopped at the end); where it
cannot run, the tests that need it are skipped with the reason (pytest -ra lists it); LIQDESK_TEST_NO_POSTGRES=1
skips them on purpose. ``pg_url`` is a fresh database per test. ``store_url`` runs a test once on SQLite and once
on PostgreSQL.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests._postgres import PgCluster, PgUnavailable

_cluster: PgCluster | None = None
_failure: str | None = None


def _get_cluster() -> PgCluster:
    global _cluster, _failure
    if _failure is None and _cluster is None and os.environ.get("LIQDESK_TEST_NO_POSTGRES"):
        _failure = "LIQDESK_TEST_NO_POSTGRES is set"
    if _failure is not None:
        pytest.skip(f"PostgreSQL not available: {_failure}")
    if _cluster is None:
        cluster = PgCluster()
        try:
            cluster.start()
        except (PgUnavailable, OSError) as exc:
            cluster.stop()
            _failure = str(exc) or type(exc).__name__
            pytest.skip(f"PostgreSQL not available: {_failure}")
        _cluster = cluster
    return _cluster


@pytest.fixture(scope="session")
def pg_cluster() -> Iterator[PgCluster]:
    yield _get_cluster()


@pytest.fixture
def pg_url(pg_cluster: PgCluster) -> Iterator[str]:
    url = pg_cluster.database()
    yield url
    pg_cluster.drop(url)


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh store of each kind: a SQLite file URL, or a new PostgreSQL database."""
    if request.param == "sqlite":
        yield f"sqlite://{(tmp_path / 'store.sqlite3').as_posix()}"
        return
    cluster = _get_cluster()
    url = cluster.database()
    yield url
    cluster.drop(url)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if _cluster is not None:
        _cluster.stop()


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if _cluster is not None:
        terminalreporter.write_line(_cluster.summary())
    elif _failure is not None:
        terminalreporter.write_line(f"PostgreSQL tests skipped: {_failure}")

"""Where the test run finds PostgreSQL and Redis: the environment `make test` passes, with local defaults.

Every layer (unit fixtures, the end-to-end topology, the browser server) reads
the services from here, so a run pointed at another server or Redis database
goes there entirely, and names that must not meet another run carry `RUN_ID`.
"""

from __future__ import annotations

import os
from urllib.parse import urlsplit, urlunsplit

import pytest

REDIS_URL = os.environ.get("QMS_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
IN_CI = os.environ.get("CI", "").lower() == "true"
# PostgreSQL for tests that create databases of their own (the end-to-end topology): the server of the
# run's DATABASE_URL when that is PostgreSQL (a SQLite run still finds the local server).
_DATABASE_URL = os.environ.get("DATABASE_URL", "")
POSTGRES_URL = (_DATABASE_URL if _DATABASE_URL.startswith(("postgres://", "postgresql://"))
                else "postgresql://postgres@127.0.0.1:5432/postgres")
# This run's own name: `make test` gives each run its own test database, and databases or Redis keys
# created by the run's end-to-end tests carry the same suffix.
RUN_ID = os.environ.get("DJANGO_TEST_DATABASE_NAME", f"pid{os.getpid()}").removeprefix("test_").replace("-", "_")


def postgres_dsn(database: str, *, port: int | None = None) -> str:
    """The run's PostgreSQL server, database `database` (and another port, for a proxy in between)."""
    parts = urlsplit(POSTGRES_URL)
    netloc = parts.netloc if port is None else f"{parts.netloc.rpartition('@')[0] or ''}@{parts.hostname}:{port}"
    return urlunsplit(("postgresql", netloc.removeprefix("@"), f"/{database}", parts.query, ""))


def postgres_port() -> int:
    return urlsplit(POSTGRES_URL).port or 5432


ADMIN_DSN = postgres_dsn("postgres")


def require_service(name: str, error: Exception):
    """Missing services fail the run in CI, and skip only on a developer's machine."""
    message = f"{name} is required: {error}"
    if IN_CI:
        pytest.fail(message)
    pytest.skip(message)

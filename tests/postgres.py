"""A real PostgreSQL for the tests: scratch databases with unique names, dropped afterwards.

The server is AVATAR_DAEMON_TEST_POSTGRES (any database on it; `.ci/run` exports one made for
the run), else the local server on 127.0.0.1:5432. Unreachable, the PostgreSQL tests skip on
a developer's machine and fail in CI (`CI` set), where they must always run.
"""

from __future__ import annotations

import contextlib
import os
import re
import uuid
from typing import Iterator
from urllib.parse import urlsplit, urlunsplit

import psycopg
import pytest
from psycopg import sql

DEFAULT = "postgresql://postgres@127.0.0.1:5432/postgres"
HOW = "set AVATAR_DAEMON_TEST_POSTGRES=postgresql://... or start PostgreSQL on 127.0.0.1:5432"

_reachable: dict[str, str | None] = {}


def server() -> str:
    """The URL tests may create databases through; skips (fails in CI) when there is no server."""
    url = os.environ.get("AVATAR_DAEMON_TEST_POSTGRES") or DEFAULT
    if url not in _reachable:
        try:
            psycopg.connect(url, connect_timeout=3).close()
            _reachable[url] = None
        except psycopg.Error as exc:
            _reachable[url] = str(exc).strip().splitlines()[0]
    problem = _reachable[url]
    if problem is not None:
        message = f"PostgreSQL is not reachable ({problem}): {HOW}"
        if os.environ.get("CI"):
            pytest.fail(f"{message}. CI must run the PostgreSQL tests (.ci/run starts the server).")
        pytest.skip(message)
    return url


def with_database(url: str, name: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path=f"/{name}"))


@contextlib.contextmanager
def scratch_database(label: str = "t") -> Iterator[str]:
    """A new empty database; its URL. Named after the run's database so leftovers are easy to find."""
    admin = server()
    run = urlsplit(admin).path.lstrip("/") or "postgres"
    name = f"{run}_{re.sub(r'[^a-z0-9]', '', label.lower())[:20]}_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        yield with_database(admin, name)
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


def empty_tables(url: str) -> None:
    """Every row gone and every id restarting at 1, the schema kept: a fresh store for the next test
    at a fraction of a new database's cost. The instance id stays."""
    with psycopg.connect(url, autocommit=True) as conn:
        tables = [r[0] for r in conn.execute(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'public' "
            "AND tablename NOT IN ('schema_migrations', 'meta')")]
        if tables:
            conn.execute(sql.SQL("TRUNCATE {} RESTART IDENTITY CASCADE").format(
                sql.SQL(", ").join(sql.Identifier(t) for t in tables)))
        if conn.execute("SELECT to_regclass('meta')").fetchone()[0]:
            conn.execute("DELETE FROM meta WHERE key <> 'instance_id'")


@pytest.fixture(scope="module")
def postgres_database(request) -> Iterator[str]:
    """One scratch database per test module."""
    with scratch_database(request.module.__name__.rsplit(".", 1)[-1]) as url:
        yield url

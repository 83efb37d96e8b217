"""A scratch PostgreSQL database for tests of several daemons (temporary: until tests/postgres.py lands)."""

import contextlib
import os
import uuid

import psycopg
import pytest

SERVER = os.environ.get("AVATAR_DAEMON_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/postgres")


@contextlib.contextmanager
def scratch_database(prefix: str):
    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    try:
        admin = psycopg.connect(SERVER, autocommit=True, connect_timeout=3)
    except psycopg.OperationalError as exc:
        if os.environ.get("CI"):
            raise
        pytest.skip(f"no PostgreSQL ({exc}): set AVATAR_DAEMON_TEST_POSTGRES=postgresql://... or start PostgreSQL "
                    "on 127.0.0.1:5432")
    with admin:
        admin.execute(f'CREATE DATABASE "{name}"')
        url = SERVER.rsplit("/", 1)[0] + "/" + name
        try:
            with psycopg.connect(url, autocommit=True) as con:
                yield url, lambda sql: con.execute(sql).fetchall()
        finally:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

"""Moving a single-machine install from SQLite to PostgreSQL without losing anything.

Every table is copied row for row with its ids, in one PostgreSQL transaction: a failure
leaves the target as empty as it was. The ids' sequences are moved past the copied rows,
and the instance id comes along, so remote idempotency keys made before the move still
match after it.
"""

from __future__ import annotations

from pathlib import Path

import psycopg
from psycopg import sql

from ..errors import AvatarDaemonError
from ..models import utcnow
from .contract import describe
from .postgres import PostgresStore
from .sqlite import SqliteStore

# Parents before children, for the foreign keys.
TABLES = ("avatar_profiles", "video_templates", "video_campaigns", "research_jobs", "video_generations", "events",
          "video_analytics", "renderer_usage", "campaign_runs", "campaign_insights", "meta", "nodes", "publications",
          "platform_figures")
MUST_BE_EMPTY = ("video_generations", "research_jobs", "video_campaigns", "events")


class CopyRefused(AvatarDaemonError):
    """The copy would lose or mix data: nothing was written."""


async def copy_sqlite_to_postgres(source: Path, target: str) -> dict[str, int]:
    """Rows copied per table. Both databases are migrated first, so their columns match."""
    if not source.is_file():
        raise CopyRefused(f"{source}: no such SQLite database")
    async with SqliteStore.connect(source, utcnow) as src, PostgresStore.connect(target, utcnow) as dst:
        async with dst.transaction() as conn:
            for table in MUST_BE_EMPTY:
                cur = await conn.execute(sql.SQL("SELECT count(*) AS n FROM {}").format(sql.Identifier(table)))
                if (n := (await cur.fetchone())["n"]):
                    raise CopyRefused(f"{describe(target)} already holds {n} row(s) in {table}: copy only into a "
                                      "new, empty database (nothing was copied)")
            await conn.execute("DELETE FROM meta")  # the source's instance id replaces the fresh one
            # One read transaction: a snapshot of the source, even if a daemon still writes to it.
            await src.db.execute("BEGIN")
            try:
                copied = {table: await _copy_table(src, conn, table) for table in TABLES}
            finally:
                await src.db.execute("ROLLBACK")
            for table in TABLES:
                if await _has_identity(conn, table):  # new rows continue after the copied ids
                    await conn.execute(sql.SQL(
                        "SELECT setval(pg_get_serial_sequence({t}, 'id'), GREATEST(max(id), 1), max(id) IS NOT NULL) "
                        "FROM {i}").format(t=sql.Literal(table), i=sql.Identifier(table)))
    return copied


async def _copy_table(src: SqliteStore, conn: psycopg.AsyncConnection, table: str) -> int:
    cur = await conn.execute("SELECT column_name, data_type FROM information_schema.columns "
                             "WHERE table_schema = current_schema() AND table_name = %s", (table,))
    target = {r["column_name"]: r["data_type"] for r in await cur.fetchall()}
    copied = 0
    async with src.db.execute(f"SELECT * FROM {table}") as rows:  # noqa: S608 (our own table names)
        columns = [d[0] for d in rows.description]
        missing = [c for c in columns if c not in target]
        if missing:
            raise CopyRefused(f"{table}: the PostgreSQL schema has no column {', '.join(missing)} "
                              "(migrate both first)")
        booleans = [i for i, c in enumerate(columns) if target[c] == "boolean"]
        copy = sql.SQL("COPY {} ({}) FROM STDIN").format(
            sql.Identifier(table), sql.SQL(", ").join(sql.Identifier(c) for c in columns))
        async with conn.cursor() as c, c.copy(copy) as out:
            async for row in rows:  # streamed: an events table need not fit in memory
                values = list(row)
                for i in booleans:
                    values[i] = None if values[i] is None else bool(values[i])
                await out.write_row(values)
                copied += 1
    return copied


async def _has_identity(conn: psycopg.AsyncConnection, table: str) -> bool:
    cur = await conn.execute("SELECT pg_get_serial_sequence(%s, 'id') IS NOT NULL AS has FROM information_schema.columns "
                             "WHERE table_schema = current_schema() AND table_name = %s AND column_name = 'id'",
                             (table, table))
    row = await cur.fetchone()
    return bool(row and row["has"])

"""Versioned schema migrations for PostgreSQL and SQLite.

Files are ingest/migrations/<dialect>/NNNN_name.sql, applied in order, each in its own
transaction together with its row in schema_migrations. Applying is idempotent and safe to run
from several processes at once (an advisory lock on PostgreSQL, BEGIN IMMEDIATE on SQLite), so
every process may call it at start-up.
"""

from __future__ import annotations

import re
import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import Any

MIGRATIONS_DIR = Path(__file__).parent / "migrations"
_FILE = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")
_LOCK_KEY = 0x4E6F7661  # "Nova": the advisory lock that serialises migrators

_TABLE_SQL = (
    "CREATE TABLE IF NOT EXISTS schema_migrations "
    "(version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TEXT NOT NULL)"
)


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sql: str


def migrations(dialect: str) -> list[Migration]:
    out = []
    for path in sorted((MIGRATIONS_DIR / dialect).glob("*.sql")):
        m = _FILE.match(path.name)
        if m is None:
            raise ValueError(f"migration file name must be NNNN_name.sql: {path}")
        out.append(Migration(int(m[1]), m[2], path.read_text()))
    versions = [m.version for m in out]
    if versions != list(range(1, len(out) + 1)):
        raise ValueError(f"{dialect} migrations must be numbered 1..n without gaps: {versions}")
    return out


def statements(script: str) -> list[str]:
    """Split a script into complete statements. Every ';' is a candidate end; sqlite3 knows
    whether it really ends one (and not a string, a comment or a trigger body)."""
    out, current = [], ""
    pieces = script.split(";")
    for piece in pieces[:-1]:
        current += piece + ";"
        if sqlite3.complete_statement(current):
            if _code(current):
                out.append(current.strip())
            current = ""
    rest = current + pieces[-1]
    if _code(rest):
        raise ValueError(f"incomplete statement at end of migration: {rest.strip()[:80]!r}")
    return out


def _code(sql: str) -> str:
    """The text without comments and blank lines (empty if it is only comments)."""
    lines = (ln.split("--", 1)[0].strip() for ln in sql.splitlines())
    return " ".join(ln for ln in lines if ln and ln != ";")


def apply_sqlite(conn: sqlite3.Connection) -> list[int]:
    """Apply pending migrations; returns the versions applied now."""
    applied: list[int] = []
    conn.execute(_TABLE_SQL)
    for migration in migrations("sqlite"):
        conn.execute("BEGIN IMMEDIATE")
        try:
            done = conn.execute(
                "SELECT 1 FROM schema_migrations WHERE version = ?", (migration.version,)
            ).fetchone()
            if done is None:
                for statement in statements(migration.sql):
                    conn.execute(statement)
                conn.execute(
                    "INSERT INTO schema_migrations VALUES (?, ?, datetime('now'))",
                    (migration.version, migration.name),
                )
                applied.append(migration.version)
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
    return applied


async def apply_postgres(conn: Any) -> list[int]:
    """`conn` is an asyncpg connection."""
    applied: list[int] = []
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock($1)", _LOCK_KEY)
        await conn.execute(_TABLE_SQL)
        done = {r["version"] for r in await conn.fetch("SELECT version FROM schema_migrations")}
        for migration in migrations("postgres"):
            if migration.version in done:
                continue
            await conn.execute(migration.sql)
            await conn.execute(
                "INSERT INTO schema_migrations VALUES ($1, $2, now()::text)",
                migration.version,
                migration.name,
            )
            applied.append(migration.version)
    return applied

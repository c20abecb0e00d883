"""ingest/migrate.py: splitting scripts, ordering migration files, applying them to SQLite."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from ingest import migrate


@pytest.fixture
def conn() -> Iterator[sqlite3.Connection]:
    c = sqlite3.connect(":memory:", isolation_level=None)
    yield c
    c.close()


@pytest.fixture
def migrations_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    (tmp_path / "sqlite").mkdir()
    monkeypatch.setattr(migrate, "MIGRATIONS_DIR", tmp_path)
    return tmp_path / "sqlite"


def tables(conn: sqlite3.Connection) -> set[str]:
    rows = conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'").fetchall()
    return {r[0] for r in rows}


# --- statements -------------------------------------------------------------------------------


def test_statements_split_on_semicolons() -> None:
    script = (
        "CREATE TABLE a (x INTEGER);\nCREATE TABLE b (\n  y TEXT\n);\n\nINSERT INTO a VALUES (1);\n"
    )
    assert migrate.statements(script) == [
        "CREATE TABLE a (x INTEGER);",
        "CREATE TABLE b (\n  y TEXT\n);",
        "INSERT INTO a VALUES (1);",
    ]


def test_semicolons_in_comments_do_not_end_a_statement() -> None:
    script = (
        "-- first; a comment with a semicolon\n"
        "CREATE TABLE a (\n"
        "  x INTEGER -- inline; comment\n"
        ");\n"
        "/* block; comment; */\n"
        "CREATE TABLE b (y TEXT);\n"
    )
    out = migrate.statements(script)
    assert len(out) == 2
    assert out[0].startswith("-- first; a comment")
    assert out[0].endswith(");")
    assert out[1] == "/* block; comment; */\nCREATE TABLE b (y TEXT);"


def test_semicolons_in_strings_do_not_end_a_statement() -> None:
    script = "INSERT INTO t VALUES ('a;b');\nINSERT INTO t VALUES ('multi;\nline; text');\n"
    assert migrate.statements(script) == [
        "INSERT INTO t VALUES ('a;b');",
        "INSERT INTO t VALUES ('multi;\nline; text');",
    ]


def test_statements_run_one_by_one(conn: sqlite3.Connection) -> None:
    script = "CREATE TABLE t (v TEXT); -- trailing comment\nINSERT INTO t VALUES ('x;y');\n"
    for statement in migrate.statements(script):
        conn.execute(statement)
    assert conn.execute("SELECT v FROM t").fetchall() == [("x;y",)]


def test_trailing_comments_and_blank_lines_are_fine() -> None:
    assert migrate.statements("CREATE TABLE a (x);\n\n-- the end\n\n") == ["CREATE TABLE a (x);"]
    assert migrate.statements("") == []
    assert migrate.statements("-- only a comment\n") == []


def test_incomplete_statement_at_the_end_is_an_error() -> None:
    with pytest.raises(ValueError, match="incomplete statement"):
        migrate.statements("CREATE TABLE a (x);\nCREATE TABLE b (y)\n")


def test_two_statements_on_one_line_are_two_statements() -> None:
    assert migrate.statements("CREATE TABLE a (x); CREATE TABLE b (y);\n") == [
        "CREATE TABLE a (x);",
        "CREATE TABLE b (y);",
    ]


# --- migrations -------------------------------------------------------------------------------


def test_shipped_migrations_are_numbered_from_one() -> None:
    for dialect in ("sqlite", "postgres"):
        found = migrate.migrations(dialect)
        assert [m.version for m in found] == list(range(1, len(found) + 1))
        assert found[0].name == "initial"
        assert "CREATE TABLE" in found[0].sql


def test_both_dialects_ship_the_same_migrations() -> None:
    sqlite, postgres = migrate.migrations("sqlite"), migrate.migrations("postgres")
    assert [(m.version, m.name) for m in sqlite] == [(m.version, m.name) for m in postgres]


def test_migrations_are_ordered_by_version(migrations_dir: Path) -> None:
    for name in ("0002_second.sql", "0010_tenth.sql", "0001_first.sql"):
        (migrations_dir / name).write_text(f"-- {name}\n")
    for v in range(3, 10):
        (migrations_dir / f"{v:04d}_m{v}.sql").write_text("")
    found = migrate.migrations("sqlite")
    assert [m.version for m in found] == list(range(1, 11))
    assert (found[0].name, found[1].name, found[9].name) == ("first", "second", "tenth")
    assert found[0].sql == "-- 0001_first.sql\n"


def test_gap_in_versions_is_an_error(migrations_dir: Path) -> None:
    (migrations_dir / "0001_first.sql").write_text("")
    (migrations_dir / "0003_third.sql").write_text("")
    with pytest.raises(ValueError, match=r"without gaps: \[1, 3\]"):
        migrate.migrations("sqlite")


def test_not_starting_at_one_is_an_error(migrations_dir: Path) -> None:
    (migrations_dir / "0002_second.sql").write_text("")
    with pytest.raises(ValueError, match="without gaps"):
        migrate.migrations("sqlite")


def test_duplicate_version_is_an_error(migrations_dir: Path) -> None:
    (migrations_dir / "0001_first.sql").write_text("")
    (migrations_dir / "0001_again.sql").write_text("")
    with pytest.raises(ValueError, match="without gaps"):
        migrate.migrations("sqlite")


@pytest.mark.parametrize("name", ["1_short.sql", "0001-dash.sql", "0001_Upper.sql", "0001_.sql"])
def test_badly_named_file_is_an_error(migrations_dir: Path, name: str) -> None:
    (migrations_dir / name).write_text("")
    with pytest.raises(ValueError, match=r"NNNN_name\.sql"):
        migrate.migrations("sqlite")


def test_other_files_are_ignored(migrations_dir: Path) -> None:
    (migrations_dir / "0001_first.sql").write_text("")
    (migrations_dir / "README.md").write_text("notes")
    assert [m.name for m in migrate.migrations("sqlite")] == ["first"]


def test_no_migrations_for_an_unknown_dialect(migrations_dir: Path) -> None:
    assert migrate.migrations("oracle") == []


# --- apply_sqlite -----------------------------------------------------------------------------


def test_apply_sqlite_applies_the_shipped_schema_once(conn: sqlite3.Connection) -> None:
    versions = [m.version for m in migrate.migrations("sqlite")]
    assert migrate.apply_sqlite(conn) == versions
    assert {"schema_migrations", "shops", "events", "seen_events", "visitors"} <= tables(conn)
    assert migrate.apply_sqlite(conn) == []
    rows = conn.execute("SELECT version, name FROM schema_migrations ORDER BY version").fetchall()
    assert rows == [(m.version, m.name) for m in migrate.migrations("sqlite")]
    assert not conn.in_transaction


def test_shipped_events_table_has_the_event_columns(conn: sqlite3.Connection) -> None:
    from ingest.records import EVENT_COLUMNS

    migrate.apply_sqlite(conn)
    columns = [r[1] for r in conn.execute("PRAGMA table_info(events)").fetchall()]
    assert set(EVENT_COLUMNS) <= set(columns)


def test_apply_sqlite_applies_only_new_migrations(
    conn: sqlite3.Connection, migrations_dir: Path
) -> None:
    (migrations_dir / "0001_a.sql").write_text("CREATE TABLE a (x INTEGER);\n")
    (migrations_dir / "0002_b.sql").write_text(
        "-- b; with a semicolon\nCREATE TABLE b (y TEXT);\nINSERT INTO b VALUES ('1;2');\n"
    )
    assert migrate.apply_sqlite(conn) == [1, 2]
    (migrations_dir / "0003_c.sql").write_text("ALTER TABLE a ADD COLUMN z TEXT;\n")
    assert migrate.apply_sqlite(conn) == [3]
    assert migrate.apply_sqlite(conn) == []
    assert {"a", "b", "schema_migrations"} == tables(conn)
    assert conn.execute("SELECT y FROM b").fetchall() == [("1;2",)]


def test_failed_migration_is_rolled_back_and_retried_later(
    conn: sqlite3.Connection, migrations_dir: Path
) -> None:
    (migrations_dir / "0001_a.sql").write_text("CREATE TABLE a (x INTEGER);\n")
    (migrations_dir / "0002_b.sql").write_text(
        "CREATE TABLE b (y TEXT);\nINSERT INTO no_such_table VALUES (1);\n"
    )
    with pytest.raises(sqlite3.OperationalError, match="no_such_table"):
        migrate.apply_sqlite(conn)
    assert not conn.in_transaction
    assert tables(conn) == {"a", "schema_migrations"}  # b's CREATE TABLE was rolled back
    assert conn.execute("SELECT version FROM schema_migrations").fetchall() == [(1,)]
    (migrations_dir / "0002_b.sql").write_text("CREATE TABLE b (y TEXT);\n")
    assert migrate.apply_sqlite(conn) == [2]
    assert "b" in tables(conn)

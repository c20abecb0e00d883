"""bench/movielens.py: RecBole's .inter format and the cache, without any network."""

from __future__ import annotations

import zipfile
from pathlib import Path

import pytest

from bench import movielens

INTER = (
    "item_id:token\trating:float\tuser_id:token\ttimestamp:float\n"
    "242\t3\t196\t881250949\n"
    "302\t3\t186\t891717742\n"
    "242\t1\t186\t878887116\n"
)


def test_parse_finds_columns_by_name_and_indexes_tokens() -> None:
    data = movielens.parse_inter(INTER)
    assert data.user_tokens == ("186", "196")
    assert data.item_tokens == ("242", "302")
    assert data.users.tolist() == [1, 0, 0]
    assert data.items.tolist() == [0, 1, 0]
    assert (data.n_users, data.n_items) == (2, 2)


def test_parse_refuses_a_file_without_the_columns() -> None:
    with pytest.raises(ValueError, match="user_id"):
        movielens.parse_inter("a:token\tb:token\n1\t2\n")
    with pytest.raises(ValueError, match="empty"):
        movielens.parse_inter("")


def test_a_cached_file_is_used_as_it_is(tmp_path: Path) -> None:
    (tmp_path / movielens.CACHED_NAME).write_text(INTER)
    assert movielens.load(tmp_path).n_users == 2


def test_the_ratings_are_extracted_from_a_downloaded_wheel(tmp_path: Path) -> None:
    with zipfile.ZipFile(tmp_path / movielens.WHEEL_FILE, "w") as wheel:
        wheel.writestr(movielens.MEMBER, INTER)
        wheel.writestr("recbole/__init__.py", "")
    path = movielens.fetch(tmp_path)
    assert path == tmp_path / movielens.CACHED_NAME
    assert path.read_text() == INTER
    assert not list(tmp_path.glob("*.partial"))

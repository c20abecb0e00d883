"""bench/movielens.py: RecBole's .inter format and the cache, without any network."""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np
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


ITEM = (
    "item_id:token\tmovie_title:token_seq\trelease_year:token\tclass:token_seq\n"
    "242\tMisérables, Les\t1996\tComedy\n"
    "302\tL.A. Confidential\t1997\tCrime Film-Noir Mystery Thriller\n"
    "999\tUnrated elsewhere\t\tDrama\n"
)


def test_the_catalog_follows_the_item_indices_and_reads_genres_year_and_title() -> None:
    catalog = movielens.parse_items(ITEM, ("302", "242", "999", "404"))
    assert catalog.titles == ("L.A. Confidential", "Misérables, Les", "Unrated elsewhere", "")
    assert catalog.genres[0] == {"Crime", "Film-Noir", "Mystery", "Thriller"}
    assert catalog.genres[1] == {"Comedy"}
    assert catalog.genres[3] == frozenset()  # not in the file
    assert catalog.released[1] == 820454400.0  # 1996-01-01T00:00:00Z
    assert np.isnan(catalog.released[2]) and np.isnan(catalog.released[3])
    with pytest.raises(ValueError, match="release_year"):
        movielens.parse_items("item_id:token\tclass:token_seq\n1\tDrama\n", ("1",))
    with pytest.raises(ValueError, match="movie_title"):
        movielens.parse_items(
            "item_id:token\trelease_year:token\tclass:token_seq\n1\t1995\tDrama\n", ("1",)
        )


def test_the_catalog_is_extracted_from_the_same_wheel(tmp_path: Path) -> None:
    with zipfile.ZipFile(tmp_path / movielens.WHEEL_FILE, "w") as wheel:
        wheel.writestr(movielens.MEMBER, INTER)
        wheel.writestr(movielens.ITEM_MEMBER, ITEM)
    catalog = movielens.load_catalog(movielens.load(tmp_path).item_tokens, tmp_path)
    assert catalog.genres == (
        frozenset({"Comedy"}),
        frozenset({"Crime", "Film-Noir", "Mystery", "Thriller"}),
    )
    assert catalog.titles[0] == "Misérables, Les"  # RecBole's file is UTF-8

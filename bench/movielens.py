"""MovieLens-100K for the offline quality evaluation, from the file RecBole ships.

The dataset is not in the repository. The first run fetches it with pip and caches it:

    python -m pip download --no-deps recbole==1.2.1 -d ~/.cache/nova
    # the wheel is a zip; the ratings are its member
    #   recbole/dataset_example/ml-100k/ml-100k.inter
    # (RecBole's atomic TSV: user_id:token, item_id:token, rating:float, timestamp:float)

`load()` does exactly that (with this interpreter's pip, so the same index and proxy settings
apply), writes the member to `~/.cache/nova/ml-100k.inter` (or under `NOVA_BENCH_CACHE`) and
reads the cached file on later runs. Only users and items are kept: every rating is a positive
interaction, whatever its value.

`load_catalog()` reads the items' file from the same wheel (ml-100k.item: title, release year,
genres), the catalog a shop would have: genres stand for collections, the release year for
when a product was created, and the titles are product titles.
"""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

WHEEL_REQUIREMENT = "recbole==1.2.1"
WHEEL_FILE = "recbole-1.2.1-py3-none-any.whl"
MEMBER = "recbole/dataset_example/ml-100k/ml-100k.inter"
CACHED_NAME = "ml-100k.inter"
ITEM_MEMBER = "recbole/dataset_example/ml-100k/ml-100k.item"
ITEM_CACHED_NAME = "ml-100k.item"


class DatasetUnavailable(RuntimeError):
    """The dataset could neither be read from the cache nor fetched."""


@dataclass(frozen=True)
class Interactions:
    """One row per interaction; users and items are contiguous indices into the token lists."""

    users: np.ndarray
    items: np.ndarray
    user_tokens: tuple[str, ...]
    item_tokens: tuple[str, ...]

    @property
    def n_users(self) -> int:
        return len(self.user_tokens)

    @property
    def n_items(self) -> int:
        return len(self.item_tokens)


def cache_dir() -> Path:
    return Path(os.environ.get("NOVA_BENCH_CACHE", Path.home() / ".cache" / "nova"))


def parse_inter(text: str) -> Interactions:
    """Parse a RecBole atomic .inter file; columns are found by name, not position."""
    lines = text.splitlines()
    if not lines:
        raise ValueError("empty .inter file")
    names = [field.split(":", 1)[0] for field in lines[0].split("\t")]
    try:
        user_col, item_col = names.index("user_id"), names.index("item_id")
    except ValueError as exc:
        raise ValueError(f"no user_id/item_id column in header {lines[0]!r}") from exc
    rows = [line.split("\t") for line in lines[1:] if line.strip()]
    user_tokens, users = np.unique([row[user_col] for row in rows], return_inverse=True)
    item_tokens, items = np.unique([row[item_col] for row in rows], return_inverse=True)
    return Interactions(
        users=users.astype(np.int32),
        items=items.astype(np.int32),
        user_tokens=tuple(str(t) for t in user_tokens),
        item_tokens=tuple(str(t) for t in item_tokens),
    )


def _extract(wheel: Path, target: Path, member: str = MEMBER) -> None:
    with zipfile.ZipFile(wheel) as archive:
        data = archive.read(member)
    partial = target.with_suffix(".partial")
    partial.write_bytes(data)
    partial.replace(target)


def fetch(cache: Path, member: str = MEMBER, name: str = CACHED_NAME) -> Path:
    """The cached ratings file (or another member), downloading RecBole's wheel if needed."""
    target = cache / name
    if target.exists():
        return target
    cache.mkdir(parents=True, exist_ok=True)
    wheel = cache / WHEEL_FILE
    if not wheel.exists():
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--quiet"]
        done = subprocess.run(
            [*cmd, WHEEL_REQUIREMENT, "-d", str(cache)], capture_output=True, text=True
        )
        if done.returncode != 0 or not wheel.exists():
            raise DatasetUnavailable(
                f"pip download {WHEEL_REQUIREMENT} failed: {done.stderr.strip()[-500:]}"
            )
    _extract(wheel, target, member)
    return target


def load(cache: Path | None = None) -> Interactions:
    return parse_inter(fetch(cache or cache_dir()).read_text())


@dataclass(frozen=True)
class Catalog:
    """Per item index (Interactions.item_tokens order)."""

    genres: tuple[frozenset[str], ...]
    released: np.ndarray  # float64 unix seconds of 1 January of the release year; NaN unknown
    titles: tuple[str, ...]  # "" unknown


def parse_items(text: str, item_tokens: tuple[str, ...]) -> Catalog:
    """Parse a RecBole atomic .item file (columns found by name) for the given items."""
    lines = text.splitlines()
    if not lines:
        raise ValueError("empty .item file")
    names = [field.split(":", 1)[0] for field in lines[0].split("\t")]
    try:
        item_col, title_col, year_col, genre_col = (
            names.index(n) for n in ("item_id", "movie_title", "release_year", "class")
        )
    except ValueError as exc:
        raise ValueError(
            f"no item_id/movie_title/release_year/class column in header {lines[0]!r}"
        ) from exc
    found: dict[str, tuple[frozenset[str], float, str]] = {}
    for line in lines[1:]:
        row = line.split("\t")
        if len(row) <= max(item_col, title_col, year_col, genre_col):
            continue
        year = row[year_col].strip()
        released = (
            float(np.datetime64(f"{year}-01-01", "s").astype(np.int64))
            if year.isdigit()
            else np.nan
        )
        found[row[item_col]] = (frozenset(row[genre_col].split()), released, row[title_col])
    known = [found.get(token, (frozenset(), np.nan, "")) for token in item_tokens]
    return Catalog(
        genres=tuple(g for g, _, _ in known),
        released=np.array([r for _, r, _ in known], dtype=np.float64),
        titles=tuple(t for _, _, t in known),
    )


def load_catalog(item_tokens: tuple[str, ...], cache: Path | None = None) -> Catalog:
    path = fetch(cache or cache_dir(), ITEM_MEMBER, ITEM_CACHED_NAME)
    return parse_items(path.read_text(encoding="utf-8"), item_tokens)  # "Misérables", "Café"

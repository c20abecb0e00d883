"""The model registry: versioned model artifacts per shop and kind, with the rows that describe
them in the stores (ModelStore) and the files under NOVA_MODEL_STORE.

A fit is published only if it clears its floor: every metric finite, and the floor metric at
least the popularity baseline's value on the same validation data. A model other than
popularity must beat the baseline strictly (a tie means it learnt nothing popularity does not
already serve); popularity itself ties its own baseline and passes. A fit that fails is
recorded as `rejected`, with the reason, and nothing changes for serving.

Artifacts go to `<root>/<shop>/<kind>/v<version>/` through pyarrow.fs, so the root may be a
local directory or object storage (s3://, gs://); a row stores its artifact's full URL, and
`fetch` downloads from it, so loading works the same wherever the registry lives. Serving uses,
per kind, the pinned version if an operator pinned one, else the newest published version.
Publishing and every pin change bump the shop's "models" version, which serving replicas poll.
"""

from __future__ import annotations

import asyncio
import math
import numbers
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import numpy as np
import pyarrow.fs as pafs

from ingest.errors import InvalidRequest, NotFound, NovaError
from ingest.records import ModelRow
from ingest.stores.base import Stores

POPULARITY = "popularity"
PUBLISHED, REJECTED = "published", "rejected"
# Both become path segments of the artifact's URL.
_KIND = re.compile(r"^[a-z][a-z0-9_]{0,39}$")
_SHOP = re.compile(r"^[a-z0-9][a-z0-9.-]{0,254}$")


@dataclass(frozen=True, slots=True)
class Floor:
    """What a fit must reach to be published: `metric` (a key of its metrics) at least
    `baseline`, the popularity model's value of that metric on the same validation data, or
    whatever stronger reference `name` says (the re-ranker must also beat its candidates'
    own order)."""

    metric: str
    baseline: float
    name: str = "the popularity baseline"


class ModelRejected(NovaError):
    """A fit did not clear its floor; it was recorded as rejected and serving is unchanged."""

    def __init__(self, row: ModelRow, floor: Floor) -> None:
        super().__init__(f"{row.kind} v{row.version} for {row.shop_id} rejected: {row.reason}")
        self.row = row
        self.floor = floor


def floor_failure(kind: str, metrics: Mapping[str, Any], floor: Floor) -> str | None:
    """Why a fit fails its floor, or None if it clears it."""
    for name, value in metrics.items():
        if not _finite(value):
            return f"metric {name} is {value!r}, not a finite number"
    if floor.metric not in metrics:
        return f"metric {floor.metric} is missing (the floor compares it)"
    if not _finite(floor.baseline):
        return f"{floor.name} of {floor.metric} is {floor.baseline!r}"
    value = float(metrics[floor.metric])
    if value > floor.baseline or (kind == POPULARITY and value == floor.baseline):
        return None
    relation = "equals" if value == floor.baseline else "is below"
    return f"{floor.metric} {value:.6g} {relation} {floor.name} {floor.baseline:.6g}" + (
        " (a model must beat it)" if value == floor.baseline else ""
    )


class Registry:
    def __init__(
        self,
        stores: Stores,
        artifact_root: str,
        *,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        """`artifact_root`: a local directory or a URL pyarrow.fs resolves. The filesystem is
        resolved on first upload, so constructing a registry never touches the network."""
        self._stores = stores
        self.root_uri = _root_uri(artifact_root)
        self._clock = clock
        self._root: tuple[pafs.FileSystem, str] | None = None

    async def publish(
        self,
        shop_id: str,
        kind: str,
        directory: Path,
        *,
        config: Mapping[str, Any],
        window: Mapping[str, Any],
        metrics: Mapping[str, Any],
        floor: Floor,
    ) -> ModelRow:
        """Record a fit: published (files uploaded, row written, "models" version bumped) if it
        clears `floor`, else rejected (ModelRejected raised after the row is written)."""
        _check_names(shop_id, kind)
        reason = floor_failure(kind, metrics, floor)
        if reason is None and not await asyncio.to_thread(_has_files, directory):
            raise ValueError(f"no model files in {directory}")
        version = await self._stores.models.next_version(shop_id, kind)
        row = ModelRow(
            shop_id=shop_id,
            kind=kind,
            version=version,
            status=PUBLISHED if reason is None else REJECTED,
            config=_plain(dict(config)),
            data_window=_plain(dict(window)),
            metrics=_plain(dict(metrics)),
            created_at=self._clock(),
            reason=reason,
        )
        if reason is not None:
            await self._stores.models.add(row)
            raise ModelRejected(row, floor)
        segments = (shop_id, kind, f"v{version}")
        await asyncio.to_thread(self._upload, directory, segments)
        published = replace(row, artifact_uri=_join(self.root_uri, *segments))
        await self._stores.models.add(published)
        return published

    async def rows(self, shop_id: str, kind: str | None = None) -> list[ModelRow]:
        return await self._stores.models.rows(shop_id, kind)

    async def serving(self, shop_id: str) -> dict[str, ModelRow]:
        """Per kind, the pinned version if there is a pin, else the newest published one."""
        return _serving(await self._stores.models.rows(shop_id), await self.pins(shop_id))

    async def pins(self, shop_id: str) -> dict[str, int]:
        return await self._stores.models.pins(shop_id)

    async def fetch(self, row: ModelRow, into: Path) -> Path:
        """Download a published model's files into the local directory `into`; returns it."""
        if row.artifact_uri is None:
            raise InvalidRequest(f"{row.kind} v{row.version} has no artifact: it was {row.status}")
        await asyncio.to_thread(_download, row.artifact_uri, into)
        return into

    async def pin(self, shop_id: str, kind: str, version: int) -> ModelRow:
        """Serve `version` of `kind` until unpinned, whatever is published later."""
        row = await self._stores.models.get(shop_id, kind, version)
        if row is None:
            raise NotFound(f"no {kind} v{version} in {shop_id}")
        if not row.published:
            raise InvalidRequest(
                f"{kind} v{version} was rejected ({row.reason}); only a published version serves"
            )
        await self._stores.models.pin(shop_id, kind, version)
        return row

    async def unpin(self, shop_id: str, kind: str) -> ModelRow | None:
        """Back to the newest published version; returns what serves now."""
        await self._stores.models.pin(shop_id, kind, None)
        return (await self.serving(shop_id)).get(kind)

    async def rollback(self, shop_id: str, kind: str) -> ModelRow:
        """Pin the published version just before the one serving now."""
        rows = await self._stores.models.rows(shop_id, kind)
        current = _serving(rows, await self.pins(shop_id)).get(kind)
        if current is None:
            raise NotFound(f"no published {kind} model in {shop_id}")
        earlier = [r for r in rows if r.published and r.version < current.version]
        if not earlier:
            raise InvalidRequest(
                f"{kind} v{current.version} is the oldest published version: "
                "there is nothing to roll back to"
            )
        target = max(earlier, key=lambda r: r.version)
        await self._stores.models.pin(shop_id, kind, target.version)
        return target

    def _upload(self, directory: Path, segments: tuple[str, ...]) -> None:
        if self._root is None:
            self._root = pafs.FileSystem.from_uri(self.root_uri)
        fs, root = self._root
        path = "/".join([root.rstrip("/"), *segments])
        fs.create_dir(path, recursive=True)
        pafs.copy_files(
            str(directory.resolve()),
            path,
            source_filesystem=pafs.LocalFileSystem(),
            destination_filesystem=fs,
        )


def _serving(rows: list[ModelRow], pins: dict[str, int]) -> dict[str, ModelRow]:
    out: dict[str, ModelRow] = {}
    for row in rows:
        if row.published and (row.kind not in out or row.version > out[row.kind].version):
            out[row.kind] = row
    for row in rows:
        if row.published and pins.get(row.kind) == row.version:
            out[row.kind] = row
    return out


def _has_files(directory: Path) -> bool:
    return any(p.is_file() for p in directory.rglob("*"))


def _download(uri: str, into: Path) -> None:
    fs, path = pafs.FileSystem.from_uri(uri)
    if fs.get_file_info(path).type != pafs.FileType.Directory:
        raise NotFound(f"model artifact {uri} is missing")
    into.mkdir(parents=True, exist_ok=True)
    pafs.copy_files(
        path,
        str(into.resolve()),
        source_filesystem=fs,
        destination_filesystem=pafs.LocalFileSystem(),
    )


def _root_uri(root: str) -> str:
    if "://" in root:
        return root.rstrip("/")
    return Path(root).expanduser().resolve().as_uri()


def _join(uri: str, *segments: str) -> str:
    """Append path segments to a URL, keeping its query (s3://b/p?endpoint_override=...)."""
    parts = urlsplit(uri)
    path = "/".join([parts.path.rstrip("/"), *segments])
    return urlunsplit(parts._replace(path=path))


def _check_names(shop_id: str, kind: str) -> None:
    if not _SHOP.match(shop_id):
        raise InvalidRequest(f"not a shop domain: {shop_id!r}")
    if not _KIND.match(kind):
        raise InvalidRequest(f"not a model kind: {kind!r} (lowercase letters, digits, _)")


def _finite(value: Any) -> bool:
    return isinstance(value, numbers.Real) and math.isfinite(float(value))


def _plain(value: Any) -> Any:
    """JSON-ready: ISO timestamps, numpy scalars as numbers, NaN and infinities as null (JSON
    has none; a rejected row's reason names the bad value)."""
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value

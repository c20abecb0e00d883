"""The benchmarks' baseline: the same apps and stores in one plain uvicorn process.

It runs exactly the code the Serve deployments wrap — /v1/events (deployments/ingest_app.py)
and /v1/recommendations (deployments/recommendations_app.py) — plus, for the production
backend, the stream writer as a background task in the same process, so it does the same work
with no Ray at all. Settings come from NOVA_* variables, as for the deployments.
"""

from __future__ import annotations

import argparse
import asyncio

import uvicorn
from starlette.types import ASGIApp, Receive, Scope, Send

from config.settings import load_settings
from deployments.ingest_app import build_ingest_app
from deployments.ranking.state import ShopStates
from deployments.recommendations_app import build_recommendations_app
from ingest.service import IngestService
from ingest.stores import open_stores
from ingest.stores.redis_log import RedisIngestLog
from ingest.writer import StreamWriter
from training.registry import Registry

EVENTS = "/v1/events"
RECOMMENDATIONS = "/v1/recommendations"


class PlainApp:
    """Routes /v1/events to the ingest app mounted the way Serve mounts it (root_path), and
    opens the stores (and the writer) in uvicorn's lifespan."""

    def __init__(self) -> None:
        self._settings = load_settings()
        self._apps: dict[str, ASGIApp] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
        elif prefix := next((p for p in self._apps if scope["path"].startswith(p)), None):
            await self._apps[prefix]({**scope, "root_path": prefix}, receive, send)
        else:
            await send({"type": "http.response.start", "status": 404, "headers": []})
            await send({"type": "http.response.body", "body": b""})

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        stop = asyncio.Event()
        task: asyncio.Task[None] | None = None
        stores = None
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                stores = await open_stores(self._settings)
                self._apps = {
                    EVENTS: build_ingest_app(self._settings, IngestService(self._settings, stores)),
                    RECOMMENDATIONS: build_recommendations_app(
                        self._settings,
                        stores,
                        ShopStates(stores, registry=Registry(stores, self._settings.model_store)),
                    ),
                }
                if isinstance(stores.admission, RedisIngestLog):
                    writer = StreamWriter(
                        stores.admission,
                        stores.events,
                        "plain-writer",
                        read_count=self._settings.writer_read_count,
                        block_ms=self._settings.writer_block_ms,
                    )
                    task = asyncio.create_task(writer.run(stop))
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                stop.set()
                if task is not None:
                    await task
                if stores is not None:
                    await stores.close()
                await send({"type": "lifespan.shutdown.complete"})
                return


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    uvicorn.run(PlainApp(), host="127.0.0.1", port=args.port, log_level="warning", access_log=False)


if __name__ == "__main__":
    main()

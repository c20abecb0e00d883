"""Starting Nova on a local Ray cluster: the same applications `make demo` and the tests run."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import sys
import time
from dataclasses import dataclass
from types import FrameType
from typing import Any, NoReturn, TextIO

import ray
from ray import serve

from config.settings import ConfigError, Settings
from deployments.app import deploy
from ingest.stores import open_stores

# Serve's HAProxy ingress (shipped with ray[serve] 2.60), throughput-optimized: a no-op
# endpoint answered ~4,400-5,400 req/s here against ~260-290 req/s through the default Python
# proxy (docs/benchmarks.md, Ingress). The variables must reach every Ray process.
SERVE_ENV = {
    "RAY_SERVE_ENABLE_HA_PROXY": "1",
    # User code on the replica's own event loop instead of a second thread (no cross-thread
    # hand-off per request). Safe because no handler blocks: I/O is async and SQLite runs on
    # an executor thread.
    "RAY_SERVE_THROUGHPUT_OPTIMIZED": "1",
    # A stopping replica stays reachable this long so load balancers can deregister it (30 s
    # by default). On one machine nothing needs deregistering; on Kubernetes keep the default.
    "RAY_SERVE_DIRECT_INGRESS_MIN_DRAINING_PERIOD_S": "2",
    # Serve gives a new proxy 5 s to report ready and otherwise kills it, which fails
    # serve.start. On a busy 2-core machine the HAProxy proxy's worker alone can take longer to
    # start (reproduced with two or three busy processes beside it), so allow as long as
    # serve.start itself waits (60 s). On Kubernetes a killed proxy is restarted with a longer
    # timeout each time, so the default is kept there.
    "RAY_SERVE_PROXY_READY_CHECK_TIMEOUT_S": "60",
}


@dataclass(frozen=True)
class Running:
    api_url: str
    dashboard_url: str | None
    applications: list[str]


def migrate(settings: Settings) -> list[int]:
    async def _migrate() -> list[int]:
        stores = await open_stores(settings, migrate=False)
        try:
            return await stores.schema.migrate()
        finally:
            await stores.close()

    return asyncio.run(_migrate())


def start(
    settings: Settings, *, dashboard: bool = True, num_cpus: int | None = None, **ray_init: Any
) -> Running:
    """Migrate, start a local Ray cluster with Serve, deploy the applications. Extra keyword
    arguments go to ray.init (tests pin the object store size and the metrics port)."""
    _check_port_free(settings)
    migrate(settings)
    env = {**settings.env(), **SERVE_ENV, **_haproxy_ports()}
    # Ray's own processes (raylet, Serve controller, proxy) inherit the driver's environment;
    # workers also get it through the job's runtime_env.
    os.environ.update({k: v for k, v in env.items() if k.startswith("RAY_")})
    context = ray.init(
        num_cpus=num_cpus,
        include_dashboard=dashboard,
        dashboard_host="127.0.0.1",
        runtime_env={"env_vars": env},
        log_to_driver=False,
        **ray_init,
    )
    serve.start(http_options={"host": settings.http_host, "port": settings.http_port})
    names = deploy(settings)
    dashboard_url = (
        f"http://{context.dashboard_url}" if dashboard and context.dashboard_url else None
    )
    return Running(
        api_url=f"http://{settings.http_host}:{settings.http_port}",
        dashboard_url=dashboard_url,
        applications=names,
    )


def _check_port_free(settings: Settings) -> None:
    """Refuse to start when something listens on the API port already (often a Nova that was
    not stopped): Serve would start anyway and its HAProxy fail later, in a traceback."""
    with socket.socket() as s:
        # A past connection's TIME_WAIT does not count; a listener does.
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((settings.http_host, settings.http_port))
        except OSError as exc:
            raise ConfigError(
                f"{settings.http_host}:{settings.http_port} is in use ({exc.strerror}): stop "
                "what listens there (another `nova serve` or `make demo`?) or set NOVA_HTTP_PORT"
            ) from exc


def _haproxy_ports() -> dict[str, str]:
    """HAProxy's own metrics and stats listeners default to fixed ports (9101, 8404) on every
    interface; locally, a second instance (tests beside a demo) would fail to start. Pick free
    ones unless the environment names them."""
    out = {}
    for name in ("RAY_SERVE_HAPROXY_METRICS_PORT", "RAY_SERVE_HAPROXY_STATS_PORT"):
        if name not in os.environ:
            with socket.socket() as s:
                s.bind(("127.0.0.1", 0))
                out[name] = str(s.getsockname()[1])
    return out


def stop() -> None:
    serve.shutdown()  # type: ignore[no-untyped-call]
    ray.shutdown()


def serve_until_stopped(ready: str, out: TextIO | None = None) -> NoReturn:
    """Print `ready`, then block until Ctrl-C, SIGTERM (kill, docker stop, systemd) or SIGHUP (a
    closed terminal), each raised as KeyboardInterrupt for the caller's clean-up (stop()).

    The handlers go in here, once everything has started: a SIGTERM killed `make demo`
    outright, through the handler Ray's core had left, and Serve's HAProxy outlived it holding
    the API port, so the next start could not bind it. They go in before `ready` is printed,
    since whoever waits for that line may stop us at once (a CI run lost that race when the
    line was printed first: the SIGTERM came during the write and Ray's handler aborted)."""

    def interrupt(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt(signal.Signals(signum).name)

    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, interrupt)
    print(ready, file=out or sys.stdout, flush=True)
    while True:
        time.sleep(3600)

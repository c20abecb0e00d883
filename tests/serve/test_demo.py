"""`make demo` end to end, on the embedded backend: a real Ray cluster with the dashboard, the
demo shop, its catalog through signed Shopify webhooks and a bulk-export sync, simulated
shoppers and their orders through HTTP, and the report it prints."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from support.tcpproxy import free_port

pytestmark = [pytest.mark.ray, pytest.mark.slow]


def test_demo_ingests_simulated_traffic_reports_it_and_stops_cleanly(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("NOVA_")}
    port = free_port()
    env.update({"NOVA_DATA_DIR": str(tmp_path), "NOVA_HTTP_PORT": str(port)})
    # The demo's own traffic and catalog (what `make demo` shows); training in the driver.
    command = [sys.executable, "-m", "deployments", "demo", "--training-workers", "0"]
    with (tmp_path / "stderr.log").open("w") as stderr:
        proc = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=stderr, text=True)
        # The demo stays up serving after its report, as `make demo` does, until stopped.
        watchdog = threading.Timer(600, proc.kill)
        watchdog.start()
        try:
            assert proc.stdout is not None
            lines = []
            for line in proc.stdout:
                lines.append(line)
                if line.startswith("Serving until Ctrl-C."):
                    break
            assert lines and lines[-1].startswith("Serving"), _tail(lines, tmp_path)
            # kill, docker stop, systemd: a SIGTERM stops it as Ctrl-C does, Serve's HAProxy
            # included, so the API port is free for the next start.
            proc.send_signal(signal.SIGTERM)
            rest, _ = proc.communicate(timeout=120)
        finally:
            watchdog.cancel()
            proc.kill()
    assert proc.returncode == 0, _tail([*lines, rest], tmp_path)
    assert "Stopping." in rest
    with socket.socket() as s:
        # Past connections' TIME_WAIT may stay; a listener may not: bind raises if one does.
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("127.0.0.1", port))
    report = "".join(lines)
    requests = int(re.search(r"sent (\d+) requests", report).group(1))  # type: ignore[union-attr]
    assert f"statuses {{202: {requests}}}" in report
    accepted = re.search(r"accepted by privacy state: (.*)", report).group(1)  # type: ignore[union-attr]
    by_state = {k: int(v) for k, v in re.findall(r"(\w+) (\d+)", accepted)}
    stored = int(re.search(r"In the event store now: (\d+)", report).group(1))  # type: ignore[union-attr]
    # Consented events are stored; pending ones only if their visitor consented later.
    persisted = by_state.get("guest", 0) + by_state.get("authenticated", 0)
    assert persisted <= stored <= persisted + by_state.get("pending", 0)
    assert by_state.get("opted_out", 0) > 0 and by_state.get("pending", 0) > 0
    assert re.search(r"Ray dashboard\s+http://127\.0\.0\.1:\d+", report)
    assert re.search(r"product_viewed\s+[1-9]\d*", report)
    assert (tmp_path / "nova.sqlite3").exists()

    # The catalog came through the webhook endpoint (every delivery verified and applied) and
    # the bulk-export sync, and is complete.
    webhooks = re.search(
        r"catalog: (\d+) collections and 300 products .* statuses \{200: (\d+)\}", report
    )
    assert webhooks is not None and int(webhooks[2]) == int(webhooks[1]) + 300
    assert "bulk-export sync: imported 300 products" in report and "0 skipped" in report
    assert re.search(r"in the catalog now: 300 products, \d+ collections", report)
    orders = re.search(r"orders: (\d+) orders/create webhooks .*statuses \{200: (\d+)\}", report)
    assert orders is not None and int(orders[1]) == int(orders[2]) > 0
    stored_orders = re.search(r"and (\d+) orders from orders/create", report)
    assert stored_orders is not None and int(stored_orders[1]) == int(orders[1])

    # Training ran on the demo traffic; every model kind beat its baseline and was published,
    # and the ranking replicas were serving them before the examples were asked.
    for kind, baseline in (("cf", "popularity"), ("co_purchase", "popularity")):
        trained = re.search(
            rf"{kind}\s+NDCG@10 ([0-9.]+) vs {baseline} ([0-9.]+) .*: published v1", report
        )
        assert trained is not None, report[-3000:]
        assert float(trained[1]) > float(trained[2])
    assert re.search(r"reranker\s+NDCG@10 .*: published v1", report), report[-3000:]
    assert "algorithms tried: als" in report
    serving = r"registry serving: cf v1, co_purchase v1, reranker v1 \(loaded by the ranking"
    assert re.search(serving, report)
    # The trained models answer: a complementary answer cites co-purchase, a related one cf.
    assert re.search(r"complementary to .*\(co_purchase\)", report)
    assert re.search(r"related to .*\(cf\)", report)


def _tail(lines: list[str], tmp_path: Path) -> str:
    return "".join(lines)[-2000:] + (tmp_path / "stderr.log").read_text()[-3000:]

"""`make demo` end to end, on the embedded backend: a real Ray cluster with the dashboard, the
demo shop, its catalog through signed Shopify webhooks and a bulk-export sync, simulated
shoppers and their orders through HTTP, and the report it prints."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from support.tcpproxy import free_port

pytestmark = [pytest.mark.ray, pytest.mark.slow]


def test_demo_ingests_simulated_traffic_and_reports_it(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("NOVA_")}
    env.update({"NOVA_DATA_DIR": str(tmp_path), "NOVA_HTTP_PORT": str(free_port())})
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "deployments",
            "demo",
            "--visitors",
            "60",
            "--products",
            "80",
            "--exit",
            "--training-workers",
            "0",
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    report = out.stdout
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
        r"catalog: (\d+) collections and 80 products .* statuses \{200: (\d+)\}", report
    )
    assert webhooks is not None and int(webhooks[2]) == int(webhooks[1]) + 80
    assert "bulk-export sync: imported 80 products" in report and "0 skipped" in report
    assert re.search(r"in the catalog now: 80 products, \d+ collections", report)
    orders = re.search(r"orders: (\d+) orders/create webhooks .*statuses \{200: (\d+)\}", report)
    assert orders is not None and int(orders[1]) == int(orders[2]) > 0
    stored_orders = re.search(r"and (\d+) orders from orders/create", report)
    assert stored_orders is not None and int(stored_orders[1]) == int(orders[1])

    # Training ran on the demo traffic, published a collaborative-filtering model that beat
    # popularity, and the ranking replicas were serving it before the examples were asked.
    trained = re.search(r"cf\s+NDCG@10 ([0-9.]+) vs popularity ([0-9.]+) .*: published v1", report)
    assert trained is not None, report[-3000:]
    assert float(trained[1]) > float(trained[2])
    assert "algorithms tried: als" in report
    assert re.search(r"registry serving: cf v1.*\(loaded by the ranking replicas\)", report)

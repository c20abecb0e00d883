"""bench/ingress: which Serve ingress to use. A do-nothing endpoint through the default Python
proxy and through the HAProxy ingress, on this machine, in one run.

    python -m bench.ingress

Each ingress runs in its own subprocess (the choice is read from the environment when Ray's
processes start), with the same closed-loop load from bench/loadgen.py.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys

from bench import report
from bench.loadgen import spawn

MODES = {
    "default proxy": {},
    "HAProxy": {"RAY_SERVE_ENABLE_HA_PROXY": "1"},
    "HAProxy, throughput-optimized": {
        "RAY_SERVE_ENABLE_HA_PROXY": "1",
        "RAY_SERVE_THROUGHPUT_OPTIMIZED": "1",
    },
}


def serve_noop_and_measure(port: int, concurrencies: list[int], duration: float) -> None:
    """Runs inside the subprocess: one no-op replica, then the load generator per level."""
    import ray
    from ray import serve
    from starlette.requests import Request
    from starlette.responses import Response

    @serve.deployment(max_ongoing_requests=256, ray_actor_options={"num_cpus": 0})
    class Noop:
        async def __call__(self, request: Request) -> Response:
            await request.body()
            return Response(b'{"ok":true}', status_code=202, media_type="application/json")

    ray.init(
        num_cpus=2, include_dashboard=False, object_store_memory=200 * 1024**2, log_to_driver=False
    )
    serve.start(http_options={"host": "127.0.0.1", "port": port})
    serve.run(Noop.bind(), name="noop", route_prefix="/v1/events")
    results = {}
    spec = {
        "bodies": [b'{"shop":"x","events":[]}'],
        "path": "/v1/events",
        "headers": {"Content-Type": "application/json"},
    }
    for c in concurrencies:
        records = spawn(port, spec, "closed", c, duration)
        measured = [r for r in records if r[0] >= 2.0]
        lat = sorted(r[1] * 1000 for r in measured)
        results[c] = {
            "rps": len(measured) / (duration - 2.0),
            "p50": lat[len(lat) // 2],
            "p99": lat[int(len(lat) * 0.99)],
            "errors": sum(1 for r in records if r[2] >= 400),
        }
    serve.shutdown()
    ray.shutdown()
    print("RESULT " + json.dumps(results), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--duration", type=float, default=12.0)
    parser.add_argument("--port", type=int, default=8766)
    parser.add_argument("--no-record", action="store_true")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    levels = [8, 32]
    if args.child:
        serve_noop_and_measure(args.port, levels, args.duration)
        return
    rows = []
    for name, env in MODES.items():
        child_env = {k: v for k, v in os.environ.items() if not k.startswith("RAY_SERVE_")}
        child_env.update(env)
        out = subprocess.run(
            [
                sys.executable,
                "-m",
                "bench.ingress",
                "--child",
                name,
                "--port",
                str(args.port),
                "--duration",
                str(args.duration),
            ],
            capture_output=True,
            text=True,
            env=child_env,
            check=True,
        )
        line = next(ln for ln in out.stdout.splitlines() if ln.startswith("RESULT "))
        for c, r in json.loads(line.removeprefix("RESULT ")).items():
            rows.append((name, c, r))
            print(
                f"  {name:<32} c={c:<3} {r['rps']:7.0f} req/s  p50 {r['p50']:6.1f} ms  "
                f"p99 {r['p99']:6.1f} ms  errors {r['errors']}",
                flush=True,
            )
    lines = [
        "## Ingress: a no-op endpoint through each Serve ingress",
        "",
        report.stamp(),
        f"One replica answering 202 with no work; closed loop for {args.duration:.0f} s per "
        "level (first 2 s excluded), load generator on the same 2 cores.",
        "",
        "| ingress | connections | req/s | p50 ms | p99 ms | errors |",
        "|---|---|---|---|---|---|",
        *(
            f"| {n} | {c} | {r['rps']:.0f} | {r['p50']:.1f} | {r['p99']:.1f} | {r['errors']} |"
            for n, c, r in rows
        ),
    ]
    text = "\n".join(lines)
    print(text)
    if not args.no_record:
        report.record("ingress", text)


if __name__ == "__main__":
    main()

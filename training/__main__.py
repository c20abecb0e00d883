"""python -m training <job> ...: fit one shop, or retrain every shop that needs it.

Exit status: 0 when every fitted model was published, 1 when a model was rejected by its
floor or a shop failed (the serving versions are then unchanged), 2 for a usage error.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import sys
from pathlib import Path

from config.settings import ConfigError, Settings, load_settings
from ingest.errors import NovaError
from training import config as training_config
from training import jobs


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m training", description=__doc__)
    parser.add_argument(
        "--config", type=Path, default=None, help="training TOML (default config/training.toml)"
    )
    sub = parser.add_subparsers(dest="job", required=True)
    fit_p = sub.add_parser("fit", help="fit one shop's models and publish those that pass")
    fit_p.add_argument("--shop", required=True, help="<name>.myshopify.com")
    retrain_p = sub.add_parser("retrain", help="fit every shop that needs it, in parallel")
    retrain_p.add_argument(
        "--shop", action="append", default=[], help="only these shops (repeatable)"
    )
    retrain_p.add_argument("--all", action="store_true", help="every installed shop, needed or not")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    try:
        settings = load_settings()
        config = training_config.load(args.config)
    except (ConfigError, training_config.ConfigError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    try:
        if args.job == "fit":
            if config.ray.num_workers > 0:  # local mode needs no cluster
                from training.distributed import ensure_ray

                ensure_ray()
            report = asyncio.run(jobs.fit_shop(settings, config, args.shop))
            print(json.dumps(report.as_dict(), indent=2, default=str))
            return 0 if report.ok else 1
        shops = args.shop or asyncio.run(_due(settings, config, every=args.all))
        if not shops:
            print(json.dumps({"shops": [], "note": "no shop needs retraining"}))
            return 0
        reports = jobs.retrain(settings, config, shops)
        print(json.dumps({"shops": reports}, indent=2, default=str))
        return 0 if all(r.get("ok") for r in reports) else 1
    except NovaError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1


async def _due(
    settings: Settings, config: training_config.TrainingConfig, *, every: bool
) -> list[str]:
    if every:
        from ingest.stores import open_stores

        stores = await open_stores(settings)
        try:
            return [s.shop_id for s in await stores.shops.list_shops() if s.uninstalled_at is None]
        finally:
            await stores.close()
    return await jobs.shops_to_retrain(settings, config)


if __name__ == "__main__":
    sys.exit(main())

"""`nova`: run, demo and operate Nova Pixel from the command line (also `python -m deployments`)."""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from datetime import UTC, datetime, timedelta

from config.settings import ConfigError, Settings, load_settings
from ingest import shops
from ingest.errors import NovaError
from ingest.stores import open_stores


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="nova", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    serve_p = sub.add_parser("serve", help="start Ray, migrate, deploy all apps; Ctrl-C stops")
    serve_p.add_argument("--no-dashboard", action="store_true")

    demo_p = sub.add_parser("demo", help="serve + a demo shop fed by simulated shoppers")
    demo_p.add_argument("--visitors", type=int, default=400)
    demo_p.add_argument("--products", type=int, default=300)
    demo_p.add_argument("--no-dashboard", action="store_true")
    demo_p.add_argument("--exit", action="store_true", help="stop after the report")

    sub.add_parser("migrate", help="apply pending schema migrations")

    shops_p = sub.add_parser("shops", help="create, list and re-key shops")
    shops_sub = shops_p.add_subparsers(dest="action", required=True)
    create_p = shops_sub.add_parser("create", help="create a shop and print its ingest key")
    create_p.add_argument("shop", help="<name>.myshopify.com")
    create_p.add_argument(
        "--no-consent-required",
        action="store_true",
        help="treat visitors without a consent decision as consented (regions without opt-in)",
    )
    shops_sub.add_parser("list", help="list shops and their keys")
    rotate_p = shops_sub.add_parser("rotate-key", help="issue a new ingest key")
    rotate_p.add_argument("shop")
    rotate_p.add_argument(
        "--grace-hours", type=float, default=24.0, help="how long the old key keeps working"
    )

    args = parser.parse_args(argv)
    try:
        settings = load_settings()
        if args.command == "serve":
            return _serve(settings, dashboard=not args.no_dashboard)
        if args.command == "demo":
            from deployments import demo

            return demo.run(
                args.visitors, args.products, stay=not args.exit, dashboard=not args.no_dashboard
            )
        if args.command == "migrate":
            from deployments.runtime import migrate

            applied = migrate(settings)
            print(f"applied migrations: {applied}" if applied else "schema is up to date")
            return 0
        return asyncio.run(_shops(settings, args))
    except ConfigError as exc:
        print(f"nova: {exc}", file=sys.stderr)
        return 2
    except NovaError as exc:
        print(f"nova: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1


def _serve(settings: Settings, *, dashboard: bool) -> int:
    from deployments import runtime

    running = runtime.start(settings, dashboard=dashboard)
    print(f"Nova Pixel serving at {running.api_url} (apps: {', '.join(running.applications)})")
    if running.dashboard_url:
        print(f"Ray dashboard: {running.dashboard_url}")
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass
    finally:
        runtime.stop()
    return 0


async def _shops(settings: Settings, args: argparse.Namespace) -> int:
    stores = await open_stores(settings)
    now = datetime.now(UTC)
    try:
        if args.action == "create":
            try:
                shop = await shops.create_shop(
                    stores.shops, args.shop, now=now, require_consent=not args.no_consent_required
                )
            except ValueError as exc:
                print(f"nova: {exc}", file=sys.stderr)
                return 2
            print(f"shop {shop.shop_id}\ningest key {shop.ingest_key}")
        elif args.action == "list":
            for shop in await stores.shops.list_shops():
                print(
                    f"{shop.shop_id}\t{shop.ingest_key}\tconsent required: {shop.require_consent}"
                )
        else:
            shop = await shops.rotate_key(
                stores.shops, args.shop, now=now, grace=timedelta(hours=args.grace_hours)
            )
            until = shop.previous_key_expires_at
            print(f"shop {shop.shop_id}\nnew ingest key {shop.ingest_key}")
            print(f"old key valid until {until.isoformat()}" if until else "old key revoked")
        return 0
    finally:
        await stores.close()


if __name__ == "__main__":
    raise SystemExit(main())

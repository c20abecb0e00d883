"""`nova`: run, demo and operate Nova Pixel from the command line (also `python -m deployments`)."""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from datetime import UTC, datetime, timedelta

from config.settings import ConfigError, Settings, load_settings
from ingest import catalog_sync, ids, shops
from ingest.errors import NotFound, NovaError
from ingest.shopify.bulk import BulkExportClient, ShopifyBulkClient
from ingest.stores import open_stores


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="nova", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    serve_p = sub.add_parser("serve", help="start Ray, migrate, deploy all apps; Ctrl-C stops")
    serve_p.add_argument("--no-dashboard", action="store_true")

    demo_p = sub.add_parser("demo", help="serve + a demo shop fed by simulated shoppers")
    demo_p.add_argument(
        "--visitors", type=int, help="simulated shoppers (default: demo.DEMO_VISITORS)"
    )
    demo_p.add_argument("--products", type=int, default=300)
    demo_p.add_argument("--no-dashboard", action="store_true")
    demo_p.add_argument("--exit", action="store_true", help="stop after the report")
    demo_p.add_argument(
        "--training-workers",
        type=int,
        default=2,
        help="Ray Train workers for the demo's fit (0: in the driver)",
    )

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

    catalog_p = sub.add_parser("catalog", help="import a shop's catalog from Shopify")
    catalog_sub = catalog_p.add_subparsers(dest="action", required=True)
    sync_p = catalog_sub.add_parser(
        "sync", help="full sync from a bulk-operation JSONL export, a product CSV, or Shopify"
    )
    sync_p.add_argument("shop", help="<name>.myshopify.com")
    source = sync_p.add_mutually_exclusive_group(required=True)
    source.add_argument("--jsonl", metavar="FILE", help="a bulk-operation JSONL export")
    source.add_argument("--csv", metavar="FILE", help="Shopify's product CSV export")
    source.add_argument(
        "--from-shopify",
        action="store_true",
        help="run a bulk export through the shop's Admin API and import it",
    )
    sync_p.add_argument(
        "--token-env",
        default="SHOPIFY_ADMIN_TOKEN",
        metavar="NAME",
        help="environment variable holding the Admin API access token (--from-shopify)",
    )

    args = parser.parse_args(argv)
    try:
        settings = load_settings()
        if args.command == "serve":
            return _serve(settings, dashboard=not args.no_dashboard)
        if args.command == "demo":
            from deployments import demo

            return demo.run(
                args.visitors or demo.DEMO_VISITORS,
                args.products,
                stay=not args.exit,
                dashboard=not args.no_dashboard,
                training_workers=args.training_workers,
            )
        if args.command == "migrate":
            from deployments.runtime import migrate

            applied = migrate(settings)
            print(f"applied migrations: {applied}" if applied else "schema is up to date")
            return 0
        if args.command == "catalog":
            return _catalog(settings, args)
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
    ready = f"Nova Pixel serving at {running.api_url} (apps: {', '.join(running.applications)})"
    if running.dashboard_url:
        ready += f"\nRay dashboard: {running.dashboard_url}"
    try:
        runtime.serve_until_stopped(ready)
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


def _catalog(settings: Settings, args: argparse.Namespace) -> int:
    try:
        shop_id = ids.shop_domain(args.shop)
    except ValueError as exc:
        print(f"nova: {exc}", file=sys.stderr)
        return 2
    source: list[str] | BulkExportClient
    if args.from_shopify:
        # An environment variable, not an argument: arguments end up in shell history and `ps`.
        token = os.environ.get(args.token_env)
        if not token:
            print(f"nova: set {args.token_env} to the shop's Admin API token", file=sys.stderr)
            return 2
        source = ShopifyBulkClient(token)
    else:
        try:
            # utf-8-sig and newline="": a CSV may start with a byte-order mark, and product
            # descriptions may hold line breaks inside quoted cells.
            with open(args.jsonl or args.csv, encoding="utf-8-sig", newline="") as f:
                source = list(f)
        except OSError as exc:
            print(f"nova: {exc}", file=sys.stderr)
            return 2
    report = asyncio.run(_catalog_sync(settings, shop_id, source, csv=bool(args.csv)))
    print(f"{shop_id}: {report.summary()}")
    for reason in report.skipped:
        print(f"  skipped {reason}")
    return 0


async def _catalog_sync(
    settings: Settings, shop_id: str, source: list[str] | BulkExportClient, *, csv: bool
) -> catalog_sync.SyncReport:
    stores = await open_stores(settings)
    try:
        if await stores.shops.get_shop(shop_id) is None:
            raise NotFound(f"no shop {shop_id} (create it with `nova shops create`)")
        if not isinstance(source, list):
            return await catalog_sync.import_bulk_from(stores, shop_id, source)
        if csv:
            return await catalog_sync.import_csv(stores, shop_id, source)
        return await catalog_sync.import_bulk(stores, shop_id, source)
    finally:
        await stores.close()


if __name__ == "__main__":
    raise SystemExit(main())

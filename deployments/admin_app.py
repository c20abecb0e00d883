"""Operator admin API under /admin: shops and their ingest keys, merchandising
(admin_merch.py) and the model registry (admin_models.py). Guarded by NOVA_OPERATOR_TOKEN
(Authorization: Bearer <token>); the merchant-facing dashboard comes with its own issue."""

from __future__ import annotations

import hmac
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

from pydantic import BaseModel, Field, ValidationError
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from config.settings import Settings
from deployments.admin_merch import merch_routes
from deployments.admin_models import model_routes
from deployments.errors import error_response, handle_nova_error
from ingest import shops as shop_ops
from ingest.errors import InvalidRequest, NotFound, NovaError
from ingest.records import Shop
from ingest.stores.base import Stores
from training.registry import Registry

Handler = Callable[[Request], Awaitable[Response]]
M = TypeVar("M", bound=BaseModel)


class CreateShop(BaseModel):
    shop: str = Field(description="<name>.myshopify.com")
    require_consent: bool = True


class RotateKey(BaseModel):
    grace_seconds: int = Field(86400, ge=0, le=30 * 86400)


def shop_json(shop: Shop) -> dict[str, Any]:
    return {
        "shop": shop.shop_id,
        "ingest_key": shop.ingest_key,
        "require_consent": shop.require_consent,
        "created_at": shop.created_at.isoformat(),
        "previous_key_expires_at": (
            shop.previous_key_expires_at.isoformat() if shop.previous_key_expires_at else None
        ),
    }


def build_admin_app(settings: Settings, stores: Stores) -> Starlette:
    token = settings.operator_token.get_secret_value().encode() if settings.operator_token else None

    def guarded(handler: Handler) -> Handler:
        async def wrapper(request: Request) -> Response:
            if token is None:
                return error_response(
                    403, "Forbidden", "the admin API is disabled: NOVA_OPERATOR_TOKEN is not set"
                )
            given = request.headers.get("authorization", "").removeprefix("Bearer ").encode()
            if not hmac.compare_digest(given, token):
                return error_response(401, "Unauthorized", "missing or wrong operator token")
            return await handler(request)

        return wrapper

    async def create(request: Request) -> Response:
        body = await _model(request, CreateShop)
        try:
            shop = await shop_ops.create_shop(
                stores.shops, body.shop, now=datetime.now(UTC), require_consent=body.require_consent
            )
        except ValueError as exc:
            raise InvalidRequest(str(exc)) from None
        return JSONResponse(shop_json(shop), status_code=201)

    async def list_all(request: Request) -> Response:
        return JSONResponse({"shops": [shop_json(s) for s in await stores.shops.list_shops()]})

    async def get_one(request: Request) -> Response:
        shop = await stores.shops.get_shop(request.path_params["shop"])
        if shop is None:
            raise NotFound(f"no shop {request.path_params['shop']}")
        return JSONResponse(shop_json(shop))

    async def rotate(request: Request) -> Response:
        body = await _model(request, RotateKey, allow_empty=True)
        shop = await shop_ops.rotate_key(
            stores.shops,
            request.path_params["shop"],
            now=datetime.now(UTC),
            grace=timedelta(seconds=body.grace_seconds),
        )
        return JSONResponse(shop_json(shop))

    async def health(request: Request) -> Response:
        await stores.health.ping()
        return JSONResponse({"status": "ok", "backend": stores.backend})

    return Starlette(
        routes=[
            Route("/shops", guarded(create), methods=["POST"]),
            Route("/shops", guarded(list_all), methods=["GET"]),
            Route("/shops/{shop}", guarded(get_one), methods=["GET"]),
            Route("/shops/{shop}/rotate-key", guarded(rotate), methods=["POST"]),
            Route("/health", guarded(health), methods=["GET"]),
            *merch_routes(stores, guarded),
            *model_routes(stores, Registry(stores, settings.model_store), guarded),
        ],
        exception_handlers={NovaError: handle_nova_error},
    )


async def _model(request: Request, model: type[M], allow_empty: bool = False) -> M:
    raw = await request.body()
    if allow_empty and not raw.strip():
        return model()
    try:
        return model.model_validate_json(raw)
    except ValidationError as exc:
        detail = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        raise InvalidRequest(detail) from None

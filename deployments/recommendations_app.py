"""GET /v1/recommendations (docs/api.md): Shopify's Ajax product-recommendations shape, plus
Nova's ranking id, experiment variant and per-product reasons.

The answer is assembled from product JSON serialised once per catalog version, and answers no
visitor history went into are reused for a few seconds (deployments/ranking/answer_cache.py).
This endpoint is the storefront's hot path, so it is a bare ASGI app rather than a Starlette
one: a router and three middlewares cost a visible share of each request (docs/benchmarks.md).
The Serve deployment (deployments/recommendations.py) wraps it; it runs under plain uvicorn too.
"""

from __future__ import annotations

import dataclasses
import logging
import operator
import secrets
import time
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from pydantic_core import to_json
from starlette.types import ASGIApp, Receive, Scope, Send

from config.settings import Settings
from deployments.errors import to_response
from deployments.ranking import engine, params
from deployments.ranking.answer_cache import AnswerCache
from deployments.ranking.params import Parsed, parse
from deployments.ranking.shopify_json import TrackedUrls, json_text
from deployments.ranking.state import ShopState, ShopStates
from deployments.ranking.view import ShopView
from ingest.errors import NotFound, NovaError, ProductNotFound, StoreUnavailable
from ingest.service import customer_key
from ingest.stores.base import Stores

log = logging.getLogger(__name__)

# A visitor seen more than this long ago, before this request, is "returning".
SESSION_GAP = timedelta(minutes=30)
# Rendered answers are stored with this in place of the ranking id's random part; each
# response swaps in its own. Not hexadecimal, so it cannot occur in a real answer.
_TOKEN = b"zzzzzzzzzzzzzzzz"

Headers = list[tuple[bytes, bytes]]
# What a request asks, for the answer cache's key: every field but its unit (the visitor), read
# into a tuple at once; replacing the field of the frozen dataclass, then hashing the copy, cost
# a visible share of a cached answer's CPU.
_asked = operator.attrgetter(
    *(f.name for f in dataclasses.fields(engine.Request) if f.name != "unit")
)


@dataclass(frozen=True, slots=True)
class Served:
    """What an answer served, for the metrics: its intent and how many products each source
    put first. Kept with a cached answer so a hit costs no walk over the reasons."""

    intent: str
    sources: tuple[tuple[str, int], ...]

    @classmethod
    def of(cls, result: engine.Result) -> Served:
        counts: dict[str, int] = {}
        for ranked in result.products:
            source = _source(ranked)
            counts[source] = counts.get(source, 0) + 1
        return cls(result.intent, tuple(counts.items()))


Observer = Callable[[Served | None, int, float], None]


class Recommendations:
    """The endpoint's logic: query parameters in, (status, headers, body) out."""

    def __init__(self, settings: Settings, stores: Stores, states: ShopStates) -> None:
        self._stores = stores
        self._states = states
        self._cache: AnswerCache[Served] = AnswerCache(settings.recs_cache_ttl_s)

    async def answer(
        self, query: dict[str, str], user_agent: str | None
    ) -> tuple[int, Headers, bytes, Served | None]:
        try:
            parsed = parse(query, user_agent)
            state = await self._states.get(parsed.shop)
            if state is None:
                raise NotFound(f"unknown shop {parsed.shop}")
            req = parsed.request
            if req.product_id is not None:
                i = state.view.index.get(req.product_id)
                if i is None or not state.view.servable[i]:
                    raise ProductNotFound(
                        f"No product with id {req.product_id} is published in the online store"
                    )
            now = datetime.now(UTC)
            degraded = False
            try:
                visitor = await _visitor(self._stores, parsed, now)
            except StoreUnavailable as exc:
                # Without session state the answer is contextual: still useful, and visible.
                log.warning("visitor state unavailable, answering contextually: %s", exc)
                visitor, degraded = engine.Visitor(), True
            chosen = engine.assign(req, visitor, state.experiments)
            key = _cache_key(state, req, visitor, chosen, degraded)
            headers: Headers = [(b"content-type", b"application/json")]
            found = self._cache.get(key) if key is not None else None
            if found is None:
                result = engine.recommend(
                    state.view,
                    req,
                    visitor,
                    rules_for=state.rules_for,
                    experiments=state.experiments,
                    now=now,
                    chosen=chosen,
                    reranker=state.models.reranker,
                )
                # Split where the ranking id's random part goes: a response joins the pieces
                # with its own, with no search through the answer's bytes.
                pieces = tuple(render(state.view, result, _TOKEN.decode(), degraded).split(_TOKEN))
                served = Served.of(result)
                if key is not None:
                    self._cache.put(key, served, pieces)
            else:
                served, pieces = found
            if key is not None:
                headers.append((b"x-nova-cache", b"miss" if found is None else b"hit"))
            token = secrets.token_hex(8).encode()
            return 200, headers, token.join(pieces), served
        except NovaError as exc:
            response = to_response(exc)
            headers = [(k.encode(), v.encode()) for k, v in response.headers.items()]
            return response.status_code, headers, bytes(response.body), None


def build_recommendations_app(
    settings: Settings, stores: Stores, states: ShopStates, observe: Observer | None = None
) -> ASGIApp:
    endpoint = Recommendations(settings, stores, states)
    allow = settings.cors_allow_origins
    any_origin = "*" in allow

    def cors(origin: bytes | None) -> Headers:
        """Credential-free CORS: any origin when configured so, else the listed ones."""
        if any_origin:
            return [(b"access-control-allow-origin", b"*")]
        if origin is not None and origin.decode(errors="replace") in allow:
            return [(b"access-control-allow-origin", origin), (b"vary", b"origin")]
        return []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":  # nothing to set up: the stores are the caller's
            while (await receive())["type"] != "lifespan.shutdown":
                await send({"type": "lifespan.startup.complete"})
            await send({"type": "lifespan.shutdown.complete"})
            return
        headers = dict(scope["headers"])
        path = scope["path"][len(scope.get("root_path", "")) :]
        status: int
        if path not in ("", "/"):
            status, out, body = 404, [], b'{"status":404,"message":"Not found"}'
        elif scope["method"] == "OPTIONS":  # preflight; a plain GET needs none
            status, out, body = (
                204,
                [
                    (b"access-control-allow-methods", b"GET"),
                    (
                        b"access-control-allow-headers",
                        headers.get(b"access-control-request-headers", b""),
                    ),
                    (b"access-control-max-age", b"86400"),
                ],
                b"",
            )
        elif scope["method"] not in ("GET", "HEAD"):
            status, out, body = 405, [(b"allow", b"GET")], b""
        else:
            started = time.perf_counter()
            query = params.query(scope["query_string"])
            ua = headers.get(b"user-agent")
            status, out, body, served = await endpoint.answer(
                query, ua.decode(errors="replace") if ua else None
            )
            if observe is not None:
                observe(served, status, time.perf_counter() - started)
        out = [*out, *cors(headers.get(b"origin")), (b"content-length", str(len(body)).encode())]
        await send({"type": "http.response.start", "status": status, "headers": out})
        await send(
            {"type": "http.response.body", "body": body if scope["method"] != "HEAD" else b""}
        )

    return app


async def _visitor(stores: Stores, parsed: Parsed, now: datetime) -> engine.Visitor:
    """Session state only with consent: a visitor who refused or has not decided gets a
    contextual answer, and their state is not even looked up (docs/privacy.md)."""
    if parsed.consent in ("denied", "unknown") or not (parsed.client_id or parsed.customer_id):
        return engine.Visitor()
    if parsed.request.intent not in engine.HISTORY_INTENTS and parsed.cart_given:
        return engine.Visitor()  # history is not used, and the cart came with the request
    keys = [
        k
        for k in (
            parsed.client_id,
            customer_key(parsed.customer_id) if parsed.customer_id else None,
        )
        if k
    ]
    found = await stores.visitors.get_many(parsed.shop, keys)  # one round trip
    usable = [v for v in found if v.privacy_state in ("guest", "authenticated")]
    if not usable:
        return engine.Visitor()
    recent = tuple(dict.fromkeys(p for v in usable for p in v.recent_views))
    cart = tuple(dict.fromkeys(p for v in usable for p in v.cart))
    last = max((v.last_seen for v in usable if v.last_seen), default=None)
    return engine.Visitor(
        recent_views=recent, cart=cart, returning=last is not None and now - last > SESSION_GAP
    )


def _source(ranked: engine.Ranked) -> str:
    """The source that put a product in the answer (a rule, for a pinned one). The engine puts
    a product's source reason first (engine._reasons)."""
    reasons = ranked.reasons
    return reasons[0]["name"] if reasons and reasons[0]["type"] == "source" else "rule"


def _cache_key(
    state: ShopState,
    req: engine.Request,
    visitor: engine.Visitor,
    chosen: engine.Choice,
    degraded: bool,
) -> Hashable | None:
    """A key when no visitor history shapes the answer (their cart only excludes products)."""
    if degraded or (visitor.recent_views and req.intent in engine.HISTORY_INTENTS):
        return None
    variant = (chosen[0].id, chosen[1].name) if chosen else None
    token = (id(state.view), state.latest_rules, state.versions.get("experiments"))
    return (state.shop.shop_id, token, variant, _asked(req), visitor.cart)


def render(view: ShopView, result: engine.Result, token: str, degraded: bool = False) -> bytes:
    """The answer as JSON bytes: product fragments serialised once per catalog version, with
    this answer's url (tracking parameters carry its ranking id) and reasons appended. The
    ranking id's random part is `token`, for the caller to replace."""
    rid = result.ranking_id.split(".")
    rid[1] = token
    ranking = ".".join(rid)
    ref = view.products[result.anchor].id if result.anchor is not None else None
    choice = f"{result.experiment}:{result.variant}" if result.experiment else "nova"
    choice_part, ranking_part, ref_part = TrackedUrls(
        ranking_id=ranking, ref_product_id=ref, choice=choice
    ).json_pieces()
    # Every product as a run of pieces for one join: its fragment, then its url built from
    # pieces escaped once (per catalog version, or per answer), then its reasons.
    parts: list[bytes] = []
    for ranked in result.products:
        i = ranked.idx
        fragment = view.json[i]
        if fragment is None:  # the engine returns servable products only
            continue
        parts += (
            fragment,
            b',"url":"',
            view.paths[i],
            choice_part,
            json_text(_source(ranked)),
            ranking_part,
            view.products[i].id.encode(),  # servable products have numeric ids
            ref_part,
            b'","reasons":',
            to_json(ranked.reasons),
            b"},",
        )
    if parts:
        parts[-1] = b"}"
    variant = (
        {"experiment": result.experiment, "name": result.variant} if result.experiment else None
    )
    tail: dict[str, Any] = {"ranking_id": ranking, "variant": variant}
    if degraded:
        tail["degraded"] = ["visitor_state"]
    return b"".join(
        (
            b'{"intent":',
            to_json(result.intent),
            b',"products":[',
            *parts,
            b"],",
            to_json(tail)[1:],
        )
    )

"""Admin API for merchandising: versioned rule sets, experiments, and recomputing statistics.
Mounted by deployments/admin_app.py under /admin/shops/{shop}/..., behind the operator token."""

from __future__ import annotations

import json
import secrets
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any, TypeVar

from pydantic import BaseModel, Field, ValidationError
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from deployments.ranking.experiments import Experiment
from deployments.ranking.refresh import refresh_stats
from deployments.ranking.rules import RuleSet
from ingest.errors import AlreadyExists, InvalidRequest, NotFound
from ingest.stores.base import Stores

Handler = Callable[[Request], Awaitable[Response]]
M = TypeVar("M", bound=BaseModel)


class Rollback(BaseModel):
    version: int = Field(ge=1)


def merch_routes(stores: Stores, guarded: Callable[[Handler], Handler]) -> list[Route]:
    async def shop_of(request: Request) -> str:
        shop_id = str(request.path_params["shop"])
        if await stores.shops.get_shop(shop_id) is None:
            raise NotFound(f"no shop {shop_id}")
        return shop_id

    async def get_rules(request: Request) -> Response:
        shop_id = await shop_of(request)
        version = request.path_params.get("version")
        found = await stores.merch.rules(shop_id, int(version) if version else None)
        if found is None:
            if version:
                raise NotFound(f"no rule set version {version}")
            return JSONResponse({"version": 0, "rules": []})
        return JSONResponse({"version": found[0], **found[1]})

    async def put_rules(request: Request) -> Response:
        shop_id = await shop_of(request)
        rule_set = parse_body(RuleSet, await request.body())
        doc = rule_set.model_dump(mode="json", exclude_none=True)
        version = await stores.merch.save_rules(shop_id, doc, datetime.now(UTC))
        return JSONResponse({"version": version, **doc}, status_code=201)

    async def rule_versions(request: Request) -> Response:
        shop_id = await shop_of(request)
        versions = await stores.merch.rule_versions(shop_id)
        return JSONResponse(
            {"versions": [{"version": v, "created_at": at.isoformat()} for v, at in versions]}
        )

    async def rollback(request: Request) -> Response:
        """A rollback is a new version with an old version's rules: history only grows."""
        shop_id = await shop_of(request)
        target = parse_body(Rollback, await request.body()).version
        found = await stores.merch.rules(shop_id, target)
        if found is None:
            raise NotFound(f"no rule set version {target}")
        version = await stores.merch.save_rules(shop_id, found[1], datetime.now(UTC))
        return JSONResponse({"version": version, "restored": target, **found[1]}, status_code=201)

    async def list_experiments(request: Request) -> Response:
        shop_id = await shop_of(request)
        return JSONResponse({"experiments": await stores.merch.experiments(shop_id)})

    async def create_experiment(request: Request) -> Response:
        shop_id = await shop_of(request)
        raw = _json(await request.body())
        raw.setdefault("salt", secrets.token_hex(8))
        raw["status"], raw["started_at"], raw["stopped_at"] = "draft", None, None
        experiment = parse_body(Experiment, raw)
        if any(e.get("id") == experiment.id for e in await stores.merch.experiments(shop_id)):
            raise AlreadyExists(f"experiment {experiment.id} exists")
        await stores.merch.save_experiment(shop_id, experiment.id, _doc(experiment))
        return JSONResponse(_doc(experiment), status_code=201)

    async def find(shop_id: str, experiment_id: str) -> Experiment:
        for doc in await stores.merch.experiments(shop_id):
            if doc.get("id") == experiment_id:
                return Experiment.model_validate(doc)
        raise NotFound(f"no experiment {experiment_id}")

    async def transition(request: Request) -> Response:
        shop_id = await shop_of(request)
        experiment = await find(shop_id, request.path_params["experiment"])
        action = request.path_params["action"]
        now = datetime.now(UTC)
        if action == "start" and experiment.status == "draft":
            changed = experiment.model_copy(update={"status": "running", "started_at": now})
        elif action == "stop" and experiment.status == "running":
            changed = experiment.model_copy(update={"status": "stopped", "stopped_at": now})
        else:
            # Restarting a stopped experiment would mix two periods in one result.
            raise InvalidRequest(f"cannot {action} an experiment that is {experiment.status}")
        await stores.merch.save_experiment(shop_id, changed.id, _doc(changed))
        return JSONResponse(_doc(changed))

    async def refresh(request: Request) -> Response:
        shop_id = await shop_of(request)
        done = await refresh_stats(stores, shop_id, datetime.now(UTC))
        return JSONResponse({"tables": [r.__dict__ for r in done]})

    base = "/shops/{shop}"
    return [
        Route(f"{base}/rules", guarded(get_rules), methods=["GET"]),
        Route(f"{base}/rules", guarded(put_rules), methods=["PUT"]),
        Route(f"{base}/rules/versions", guarded(rule_versions), methods=["GET"]),
        Route(f"{base}/rules/rollback", guarded(rollback), methods=["POST"]),
        Route(f"{base}/rules/{{version:int}}", guarded(get_rules), methods=["GET"]),
        Route(f"{base}/experiments", guarded(list_experiments), methods=["GET"]),
        Route(f"{base}/experiments", guarded(create_experiment), methods=["POST"]),
        Route(
            f"{base}/experiments/{{experiment}}/{{action:str}}",
            guarded(transition),
            methods=["POST"],
        ),
        Route(f"{base}/stats/refresh", guarded(refresh), methods=["POST"]),
    ]


def _doc(experiment: Experiment) -> dict[str, Any]:
    return experiment.model_dump(mode="json")


def _json(raw: bytes) -> dict[str, Any]:
    try:
        value = json.loads(raw or b"{}")
    except ValueError as exc:
        raise InvalidRequest(f"malformed JSON: {exc}") from None
    if not isinstance(value, dict):
        raise InvalidRequest("body must be a JSON object")
    return value


def parse_body(model: type[M], raw: bytes | dict[str, Any]) -> M:
    try:
        if isinstance(raw, dict):
            return model.model_validate(raw)
        return model.model_validate_json(raw or b"{}")
    except ValidationError as exc:
        detail = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        raise InvalidRequest(detail) from None

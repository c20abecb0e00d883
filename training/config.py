"""Training configuration: one TOML file (config/training.toml by default) read into typed,
strict models. Hyperparameters live in the file, not in code; a misspelt key is an error."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

DEFAULT_PATH = Path(__file__).resolve().parent.parent / "config" / "training.toml"


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class DataConfig(Strict):
    window_days: float = Field(gt=0, description="Interactions older than this are not read.")
    half_life_days: float = Field(gt=0, description="An interaction's weight halves this often.")
    weights: dict[str, float] = Field(description="Weight per kind: view, cart, purchase, click.")
    min_user_items: int = Field(ge=1, description="Users with fewer distinct items are dropped.")

    def weight_of(self, kind: str) -> float:
        return self.weights.get(kind, 0.0)


class ValidationSplit(Strict):
    fraction: float = Field(gt=0, lt=1, description="Share of each user's latest items held out.")
    min_user_items: int = Field(ge=2, description="Only users this active give validation items.")
    k: int = Field(ge=1, description="Cut-off of the selection metric (NDCG@k).")
    max_users: int = Field(ge=1, description="At most this many shoppers validate (a sample).")
    metric: str = "ndcg"


class ServingConfig(Strict):
    neighbours: int = Field(ge=1, description="Neighbours per product exported to serving.")


class RayConfig(Strict):
    num_workers: int = Field(ge=0, description="Ray Train workers; 0 runs in the driver.")
    cpus_per_worker: float = Field(gt=0)
    storage_path: str | None = None
    poll_interval_s: float = Field(
        0.2, gt=0, description="How often Ray Train's controller checks on its workers."
    )
    # Starting a worker group costs ~10 s: smaller work runs in the driver (local mode).
    # (0: always use the workers.)
    min_interactions: int = Field(0, ge=0, description="Interactions for the Gram run on workers.")
    min_reranker_rows: int = Field(
        0, ge=0, description="Training rows for the re-ranker on workers."
    )

    def for_size(self, size: int, threshold: int) -> RayConfig:
        """This config, or local mode when `size` is below `threshold`."""
        return self if size >= threshold else self.model_copy(update={"num_workers": 0})


class RerankerConfig(Strict):
    candidates: int = Field(ge=1, description="Candidates per request the re-ranker orders.")
    params: dict[str, Any] = Field(description="XGBoost parameters (objective rank:ndcg etc).")
    rounds: int = Field(ge=1)
    early_stopping_rounds: int = Field(ge=1)
    negatives: int = Field(ge=1, description="Negatives kept per query when labels are history.")
    max_queries: int = Field(ge=1, description="At most this many history queries to learn from.")
    min_queries: int = Field(ge=1, description="Queries with a positive needed to fit at all.")
    max_impressions: int = Field(ge=0, description="Latest impressions read as training queries.")


class RetrainConfig(Strict):
    min_interval_hours: float = Field(ge=0, description="A shop is refitted at most this often.")
    min_new_events: int = Field(ge=0, description="New events since the last fit to refit.")
    max_parallel: int = Field(ge=1, description="Shops fitted at the same time.")


class TrainingConfig(Strict):
    data: DataConfig
    validation: ValidationSplit
    serving: ServingConfig
    ray: RayConfig
    models: dict[str, dict[str, Any]] = Field(description="Per model kind, its hyperparameters.")
    reranker: RerankerConfig
    retrain: RetrainConfig


class ConfigError(ValueError):
    pass


def load(path: Path | None = None) -> TrainingConfig:
    target = path or DEFAULT_PATH
    try:
        raw = tomllib.loads(target.read_text())
    except FileNotFoundError:
        raise ConfigError(f"training config {target} does not exist") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"training config {target}: {exc}") from None
    try:
        return TrainingConfig.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(f"training config {target}: {exc}") from None

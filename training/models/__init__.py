"""The registry of model kinds: what a training config's `kind` names, and how to build or
load one. Adding a model is one module and one line here; the contract suite
(tests/unit/test_model_contract.py) then runs on it."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, Protocol

from training.models.als import ALS
from training.models.base import Model, ModelConfig
from training.models.co_purchase import CoPurchase
from training.models.ease import EASE
from training.models.item_knn import ItemKNN
from training.models.popularity import Popularity


class ModelClass(Protocol):
    kind: str
    config_type: type[ModelConfig]

    def __call__(self, config: Any = None) -> Model: ...

    def load(self, directory: Path) -> Model: ...


MODELS: dict[str, ModelClass] = {
    Popularity.kind: Popularity,
    ItemKNN.kind: ItemKNN,
    EASE.kind: EASE,
    ALS.kind: ALS,
    CoPurchase.kind: CoPurchase,
}


def model_class(kind: str) -> ModelClass:
    try:
        return MODELS[kind]
    except KeyError:
        raise ValueError(
            f"unknown model kind {kind!r}; known kinds: {', '.join(sorted(MODELS))}"
        ) from None


def build(kind: str, config: Mapping[str, Any] | None = None) -> Model:
    """An unfitted model; the config is validated (unknown keys, out-of-range values) here,
    before any data is read."""
    cls = model_class(kind)
    return cls(cls.config_type.model_validate(dict(config or {})))


def load(kind: str, directory: Path) -> Model:
    return model_class(kind).load(directory)

"""Ray Train's controller checks on its workers at [ray] poll_interval_s during Nova's runs,
unless the operator set Ray's own variable."""

from __future__ import annotations

import os

import pytest
from ray.train.v2._internal.constants import ENV_VARS_TO_PROPAGATE

from training.config import RayConfig
from training.distributed import POLL_ENV, controller_polling

CONFIG = RayConfig(num_workers=1, cpus_per_worker=1.0, poll_interval_s=0.25)


def test_the_interval_is_set_for_the_run_only(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(POLL_ENV, raising=False)
    with controller_polling(CONFIG):
        assert os.environ[POLL_ENV] == "0.25"
    assert POLL_ENV not in os.environ


def test_an_operators_own_setting_wins(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(POLL_ENV, "1.5")
    with controller_polling(CONFIG):
        assert os.environ[POLL_ENV] == "1.5"
    assert os.environ[POLL_ENV] == "1.5"


def test_ray_hands_the_variable_to_its_controller() -> None:
    # The trainer copies these from the driver's environment into the controller's: if a Ray
    # upgrade stops doing so for this one, the setting silently does nothing.
    assert POLL_ENV in ENV_VARS_TO_PROPAGATE

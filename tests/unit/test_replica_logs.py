"""Our modules' records reach a Serve replica's log file at once (deployments/logs.py)."""

from __future__ import annotations

import logging
import logging.handlers
from collections.abc import Iterator

import pytest

from deployments.logs import PACKAGES, SERVE_LOGGER, to_replica_log


class Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


@pytest.fixture
def replica_file() -> Iterator[Collect]:
    """A "ray.serve" logger as Serve configures a replica's with RAY_SERVE_THROUGHPUT_OPTIMIZED:
    not propagating, its file behind a 1,000-record buffer that only errors flush."""
    serve_logger = logging.getLogger(SERVE_LOGGER)
    saved = (serve_logger.handlers[:], serve_logger.propagate, serve_logger.level)
    ours = {
        name: (logging.getLogger(name).handlers[:], logging.getLogger(name).level)
        for name in PACKAGES
    }
    file = Collect()
    serve_logger.handlers = [
        logging.handlers.MemoryHandler(1000, flushLevel=logging.ERROR, target=file)
    ]
    serve_logger.propagate = False
    try:
        yield file
    finally:
        serve_logger.handlers, serve_logger.propagate, serve_logger.level = saved
        for name, (handlers, level) in ours.items():
            logging.getLogger(name).handlers = handlers
            logging.getLogger(name).setLevel(level)


def test_records_of_our_packages_are_written_at_once(replica_file: Collect) -> None:
    log = logging.getLogger("deployments.ranking.models")
    log.info("before: lost")
    assert replica_file.messages == []
    to_replica_log()
    to_replica_log()  # twice changes nothing
    log.info("shop cf: v1 -> v2")
    logging.getLogger("training.jobs").warning("shop: rejected")
    log.debug("not at INFO")
    logging.getLogger("elsewhere").warning("not ours")
    assert replica_file.messages == ["shop cf: v1 -> v2", "shop: rejected"]


def test_our_records_pass_when_serve_logs_warnings_only(replica_file: Collect) -> None:
    # The Recommendations deployment sets Serve's log level to WARNING (its per-request INFO
    # records cost CPU); the operator still needs our INFO records, e.g. a model swapped in.
    logging.getLogger(SERVE_LOGGER).setLevel(logging.WARNING)
    to_replica_log()
    logging.getLogger(SERVE_LOGGER).info("an access-log line")
    logging.getLogger("deployments.ranking.models").info("shop cf: v2 -> v3")
    assert replica_file.messages == ["shop cf: v2 -> v3"]

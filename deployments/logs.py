"""Our modules' log records in the Serve replica's own log file.

Serve writes a replica's log (logs/serve/replica_<app>_<deployment>_<id>.log) through the
"ray.serve" logger only, which does not propagate, and nothing handles other loggers: without
this, records of deployments.*, ingest.* and training.* (a model swapped in, a model that cannot
load, a refresh that failed) went nowhere, INFO ones at least. With RAY_SERVE_THROUGHPUT_OPTIMIZED
the file handler is also behind a 1,000-record buffer flushed only by errors; our records are
rare and operators read them when something changes, so each one is flushed at once.
"""

from __future__ import annotations

import logging

SERVE_LOGGER = "ray.serve"  # ray.serve._private.constants.SERVE_LOGGER_NAME
PACKAGES = ("config", "deployments", "ingest", "training")


class _ToServeLog(logging.Handler):
    def emit(self, record: logging.LogRecord) -> None:
        serve_logger = logging.getLogger(SERVE_LOGGER)
        # The handlers Serve configured for this replica, whatever they are by now (Serve
        # replaces them when a deployment's logging_config changes).
        serve_logger.handle(record)
        for handler in serve_logger.handlers:
            handler.flush()


def to_replica_log(level: int = logging.INFO) -> None:
    """Route our packages' records at `level` and above to this replica's Serve log. Call it
    in a deployment's constructor; calling it again changes nothing."""
    for name in PACKAGES:
        logger = logging.getLogger(name)
        logger.setLevel(level)
        if not any(isinstance(h, _ToServeLog) for h in logger.handlers):
            logger.addHandler(_ToServeLog())

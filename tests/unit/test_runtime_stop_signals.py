"""`nova serve` and `make demo` print a ready line that scripts (and the demo test) wait for,
then stop on SIGTERM or SIGHUP. A signal sent the moment that line appears must already find
the handler that turns it into a clean stop, not the process-killing one from before."""

from __future__ import annotations

import io
import os
import signal
from collections.abc import Iterator

import pytest

from deployments import runtime


class TooEarly(Exception):
    """The signal reached the handler that was there before serve_until_stopped's."""


class SignalOnReady(io.StringIO):
    """Sends `sig` to this process as soon as the ready line is written, as a waiting script
    would."""

    def __init__(self, sig: signal.Signals) -> None:
        super().__init__()
        self.sig = sig

    def write(self, text: str) -> int:
        written = super().write(text)
        if "ready" in text:
            os.kill(os.getpid(), self.sig)
        return written


@pytest.fixture
def earlier_handlers() -> Iterator[None]:
    def too_early(signum: int, frame: object) -> None:
        raise TooEarly(signal.Signals(signum).name)

    saved = {sig: signal.signal(sig, too_early) for sig in (signal.SIGTERM, signal.SIGHUP)}
    try:
        yield
    finally:
        for sig, handler in saved.items():
            signal.signal(sig, handler)


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGHUP])
@pytest.mark.usefixtures("earlier_handlers")
def test_a_signal_sent_when_the_ready_line_appears_stops_cleanly(sig: signal.Signals) -> None:
    out = SignalOnReady(sig)
    with pytest.raises(KeyboardInterrupt, match=sig.name):
        runtime.serve_until_stopped("ready at http://127.0.0.1:1", out=out)
    assert out.getvalue().startswith("ready at http://127.0.0.1:1")

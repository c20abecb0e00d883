"""`nova serve` and `make demo` refuse a taken API port with a clear error, before starting Ray:
otherwise Serve starts and its HAProxy fails later to bind, in a traceback."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest
import ray

from deployments import cli


def test_serve_on_a_port_something_listens_on_says_so_and_starts_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]
        monkeypatch.setenv("NOVA_DATA_DIR", str(tmp_path))
        monkeypatch.setenv("NOVA_HTTP_PORT", str(port))
        assert cli.main(["serve", "--no-dashboard"]) == 2
    err = capsys.readouterr().err
    assert f"127.0.0.1:{port} is in use" in err and "NOVA_HTTP_PORT" in err
    assert not ray.is_initialized()
    assert not list(tmp_path.iterdir())  # not even migrated: nothing was started


def test_a_free_port_passes_the_check(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from config.settings import load_settings
    from deployments import runtime

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    monkeypatch.setenv("NOVA_DATA_DIR", str(tmp_path))
    runtime._check_port_free(load_settings(http_port=port))  # no error

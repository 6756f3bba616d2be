"""Fixtures for the auth-side server tests (the ``server`` fixture is in tests/conftest.py)."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from tests.support.server import RunningServer, start_server


@pytest.fixture
def make_server(tmp_path) -> Iterator[Callable[..., RunningServer]]:
    """``make_server(**settings)``: a server with settings overrides, stopped at teardown."""
    started: list[RunningServer] = []

    def make(**overrides) -> RunningServer:
        running = start_server(tmp_path / f"server{len(started)}", **overrides)
        started.append(running)
        return running

    yield make
    for running in started:
        running.stop()


@pytest.fixture
def open_server(make_server) -> RunningServer:
    """Devices active at enrollment (one TOTP code per device); no login backoff, so tests
    can fail on purpose without waiting (backoff has its own test)."""
    return make_server(require_device_approval=False, login_backoff_base_ms=0)

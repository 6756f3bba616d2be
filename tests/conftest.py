import os

import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from tests.support.server import RunningServer, start_server


@pytest.fixture
def server(tmp_path) -> RunningServer:
    """A fresh reference server with its own data directory, CA and database."""
    running = start_server(tmp_path / "server")
    yield running
    running.stop()


@pytest.fixture
def open_server(tmp_path) -> RunningServer:
    """A reference server that activates enrolled devices without an admin's approval."""
    running = start_server(tmp_path / "server", require_device_approval=False)
    yield running
    running.stop()

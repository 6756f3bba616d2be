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


_phi_guard = None


def pytest_configure(config):
    global _phi_guard
    from tests.support import phi_log_guard

    _phi_guard = phi_log_guard.install()


def pytest_sessionfinish(session, exitstatus):
    if _phi_guard is not None and _phi_guard.leaks:
        reporter = session.config.pluginmanager.get_plugin("terminalreporter")
        lines = [f"PHI in log lines ({len(_phi_guard.leaks)} of {_phi_guard.records} records):",
                 *_phi_guard.leaks[:20]]
        if reporter is not None:
            reporter.write_line("\n".join(lines), red=True)
        session.exitstatus = 1

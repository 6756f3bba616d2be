import os

import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from tests.support import media_threads
from tests.support.server import RunningServer, start_server

_leftover_decoders: list[str] = []  # tests that left an aiortc peer connection open


@pytest.fixture(autouse=True)
def _end_leftover_media_threads(request):
    """See tests/support/media_threads.py: a leaked peer connection must not hang the run."""
    before = media_threads.decoder_threads()
    yield
    if media_threads.decoder_threads() - before:
        ended = media_threads.end_leftovers(before)
        if ended:
            _leftover_decoders.append(f"{request.node.nodeid}: {ended} decoder thread(s)")


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
    from tests.support import phi_log_guard

    lines = []
    if _phi_guard is not None and _phi_guard.leaks:
        lines += [f"PHI in log lines ({len(_phi_guard.leaks)} of {_phi_guard.records} records):",
                  *_phi_guard.leaks[:20]]
    factory = getattr(session.config, "_tmp_path_factory", None)
    basetemp = getattr(factory, "_basetemp", None)  # None: no test used tmp_path
    if basetemp is not None:
        in_files = phi_log_guard.scan_log_files(basetemp)
        if in_files:
            lines += ["PHI in log files of this run (child processes included):",
                      *in_files[:20]]
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    if _leftover_decoders and reporter is not None:
        reporter.write_line("\n".join([
            "Peer connections left open (their decoder threads were ended so the run can "
            "exit):", *_leftover_decoders[:20]]), yellow=True)
    if lines:
        if reporter is not None:
            reporter.write_line("\n".join(lines), red=True)
        session.exitstatus = 1

"""The session-wide PHI log guard (tests/support/phi_log_guard.py) can fail: a patient name
in a message or an argument reaches the line the app would write and is caught; what the
app's PHI filter removes (Phi-wrapped values, extra fields off the allow-list, exception
messages, digit runs such as MRNs) is not."""

from __future__ import annotations

import logging

from app.core.phi import Phi
from tests.support.phi_log_guard import PhiLogGuard


def _logger(guard: PhiLogGuard) -> logging.Logger:
    log = logging.getLogger("tests.phi_guard_probe")
    log.propagate = False  # keep these deliberate leaks away from the session's own guard
    log.handlers[:] = [guard]
    log.setLevel(logging.DEBUG)
    return log


def test_names_the_filter_cannot_recognise_are_caught():
    guard = PhiLogGuard()
    log = _logger(guard)
    log.info("opened the chart of Jane Doe")
    log.debug("patient %s", "Zhang Wei")
    log.warning("upload failed", extra={"room_id": "ward note ZEBRA-MARKER-4711"})
    assert len(guard.leaks) == 3 and guard.records == 3


def test_what_the_phi_filter_removes_passes():
    guard = PhiLogGuard()
    log = _logger(guard)
    log.info("opened the chart of %s", Phi("Jane Doe"))
    log.info("sync done", extra={"count": 3, "patient_name": "Zhang Wei"})
    log.info("lookup 004417729 done")  # digit runs are scrubbed
    try:
        raise KeyError("Jane Doe")
    except KeyError:
        log.exception("task crashed")  # the exception message is withheld
    assert guard.leaks == [] and guard.records == 4


def test_log_files_of_child_processes_are_searched(tmp_path):
    from tests.support.phi_log_guard import scan_log_files

    logs = tmp_path / "ws" / "logs"
    logs.mkdir(parents=True)
    (logs / "safeconsult.log").write_text('{"msg": "opened the study"}\n')
    (logs / "safeconsult.log.1").write_text('{"msg": "chart of Jane Doe"}\n')
    (tmp_path / "notes.txt").write_text("Jane Doe")  # not a log file
    try:
        assert scan_log_files(tmp_path) == ["ws/logs/safeconsult.log.1: 'Jane Doe'"]
    finally:  # the session's own scan at the end would find this deliberate leak
        (logs / "safeconsult.log.1").unlink()
    assert scan_log_files(tmp_path) == []

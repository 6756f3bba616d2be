"""Issue #8: "no PHI in any log line of a full test run".

A logging handler installed for the whole test session on the root logger, with our own
loggers (``app``, ``server_stub``) at DEBUG. Every record they or anything else emits in
this process is turned into the line the app would write -- a copy passed through the app's
one PHI filter and JSON formatter (``app.core.logsafe``) -- and that line is searched for the
synthetic patient data the tests use (names, MRNs, note markers). A hit fails the run at the
end with the logger and the offending line. Child processes (the app started as its own
process by CLI, lock and crash tests, the demo) write their log files under the session's
temporary directory: those files are searched too at the end (``scan_log_files``).
"""

from __future__ import annotations

import logging
from pathlib import Path

from app.core.logsafe import JsonFormatter, PhiLogFilter

# The synthetic PHI of the test suite: every test that handles patient data uses one of
# these (or a string containing one), so that this guard can find it.
PHI_MARKERS = (
    "Jane Doe", "Zhang Wei", "Testpatient", "4711-0815", "004417729", "48213377",
    "PT-0042917", "MARKER-ATTACH", "ZEBRA-MARKER", "WIPE-MARKER", "KIOSK-MARKER",
)


class PhiLogGuard(logging.Handler):
    def __init__(self) -> None:
        super().__init__(level=logging.DEBUG)
        self._filter, self._formatter = PhiLogFilter(), JsonFormatter()
        self.records = 0
        self.leaks: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records += 1
        line = logging.makeLogRecord(dict(record.__dict__))
        self._filter.filter(line)
        text = self._formatter.format(line)
        for marker in PHI_MARKERS:
            if marker in text:
                self.leaks.append(f"{record.name} {record.levelname}: {text[:300]}")
                return


def install() -> PhiLogGuard:
    guard = PhiLogGuard()
    logging.getLogger().addHandler(guard)
    for name in ("app", "server_stub"):
        logging.getLogger(name).setLevel(logging.DEBUG)
    return guard


def scan_log_files(root: Path) -> list[str]:
    """Every log file under ``root`` (the app's ``safeconsult.log`` and its rotations, any
    ``*.log``) that holds one of the markers: one line per hit, file and marker."""
    leaks = []
    for path in sorted(root.rglob("*.log*")):
        if not path.is_file() or not (path.suffix == ".log" or ".log." in path.name):
            continue
        try:
            text = path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            continue
        leaks += [f"{path.relative_to(root)}: {marker!r}" for marker in PHI_MARKERS
                  if marker in text]
    return leaks

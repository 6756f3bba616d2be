"""Structured, rotating logs with one PHI filter.

The rule: a log line carries event names, ids and counts -- never patient data. The filter
enforces it three ways: values tagged :class:`~app.core.phi.Phi` are replaced; ``extra``
fields must be on an allow-list (anything else is dropped, so a new field cannot leak by
accident); and the rendered message is scrubbed of identifier-shaped text (long digit runs
such as MRNs or phone numbers, e-mail addresses, dates of birth) as a last line of defence.
"""

from __future__ import annotations

import json
import logging
import logging.handlers
import re
import time
from pathlib import Path

from app.core.phi import PLACEHOLDER, Phi

# extra={...} keys that may appear in a log line. They hold ids, counts and states only.
ALLOWED_FIELDS = frozenset(
    {
        "event", "device_id", "room_id", "event_id", "request_id", "status", "duration_ms",
        "count", "bytes", "attempt", "state", "reason_code", "path", "method", "version",
    }
)

_SCRUBBERS = [
    (re.compile(r"[\w.+-]+@[\w-]+\.[\w.-]+"), "[email]"),
    (re.compile(r"\b(19|20)\d{2}[-/.](0?[1-9]|1[0-2])[-/.](0?[1-9]|[12]\d|3[01])\b"), "[date]"),
    (re.compile(r"\+?\d[\d \-]{5,}\d"), "[number]"),
]

_STD_ATTRS = frozenset(logging.LogRecord("", 0, "", 0, "", None, None).__dict__) | {
    "message", "asctime", "taskName",
}


def scrub_text(text: str) -> str:
    for pattern, replacement in _SCRUBBERS:
        text = pattern.sub(replacement, text)
    return text


def _safe_arg(value: object) -> object:
    return PLACEHOLDER if isinstance(value, Phi) else value


class PhiLogFilter(logging.Filter):
    """Attach to every handler. Mutates the record so no handler sees the raw values."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(_safe_arg(a) for a in record.args)
        elif isinstance(record.args, dict):
            record.args = {k: _safe_arg(v) for k, v in record.args.items()}
        try:
            message = record.getMessage()
        except Exception:  # a bad format string must not take the log down
            message = str(record.msg)
        record.msg, record.args = scrub_text(message), None
        for key in list(record.__dict__):
            if key not in _STD_ATTRS and key not in ALLOWED_FIELDS:
                del record.__dict__[key]
            elif key in ALLOWED_FIELDS:
                value = record.__dict__[key]
                record.__dict__[key] = (
                    PLACEHOLDER if isinstance(value, Phi) else scrub_text(str(value))
                    if isinstance(value, str) else value
                )
        if record.exc_info:
            # Tracebacks can quote local values (e.g. a name in a KeyError). Keep the type and
            # the place, drop the message text.
            exc_type, _exc, tb = record.exc_info
            record.exc_text = f"{exc_type.__name__ if exc_type else 'Exception'} (message withheld)"
            record.exc_info = None
            record.stack_info = None
            if tb is not None:
                frame = tb
                while frame.tb_next is not None:
                    frame = frame.tb_next
                code = frame.tb_frame.f_code
                record.exc_text += f" at {Path(code.co_filename).name}:{frame.tb_lineno}"
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object a line: time, level, logger, message and the allowed fields."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "t": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname,
            "logger": record.name,
            "msg": record.getMessage(),
        }
        for key in ALLOWED_FIELDS:
            if key in record.__dict__:
                entry[key] = record.__dict__[key]
        if record.exc_text:
            entry["exc"] = record.exc_text
        return json.dumps(entry, ensure_ascii=False, default=str)


def configure_logging(
    log_dir: Path | None, *, level: int = logging.INFO, max_bytes: int = 2_000_000,
    backups: int = 5, console: bool = False,
) -> logging.Logger:
    """Configure the root logger: rotating JSON file in ``log_dir`` (if given), PHI-filtered."""
    root = logging.getLogger()
    for handler in list(root.handlers):
        if getattr(handler, "_safeconsult", False):
            root.removeHandler(handler)
            handler.close()
    handlers: list[logging.Handler] = []
    if log_dir is not None:
        log_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        handlers.append(
            logging.handlers.RotatingFileHandler(
                log_dir / "safeconsult.log", maxBytes=max_bytes, backupCount=backups,
                encoding="utf-8",
            )
        )
    if console:
        handlers.append(logging.StreamHandler())
    for handler in handlers:
        handler.addFilter(PhiLogFilter())
        handler.setFormatter(JsonFormatter())
        handler._safeconsult = True  # type: ignore[attr-defined]
        root.addHandler(handler)
    root.setLevel(level)
    return root

"""The one PHI log filter: no patient data reaches a log line."""

import json
import logging

import pytest
from hypothesis import given
from hypothesis import strategies as st

from app.core.logsafe import configure_logging, scrub_text
from app.core.phi import Phi

PATIENT = "Zhang Wei-Testpatient"
MRN = "MRN 004417729"


@pytest.fixture
def log_file(tmp_path):
    configure_logging(tmp_path)
    yield tmp_path / "safeconsult.log"
    configure_logging(None)


def lines(path):
    for handler in logging.getLogger().handlers:
        handler.flush()
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_phi_values_are_replaced(log_file):
    logging.getLogger("t").info("opened chart of %s (%s)", Phi(PATIENT), Phi(MRN))
    text = log_file.read_text()
    assert PATIENT not in text and "004417729" not in text
    assert lines(log_file)[-1]["msg"] == "opened chart of [PHI] ([PHI])"


def test_identifier_shaped_text_is_scrubbed_even_untagged(log_file):
    logging.getLogger("t").warning("lookup 004417729 for a.patient@example.org born 1961-03-04")
    msg = lines(log_file)[-1]["msg"]
    assert "004417729" not in msg and "example.org" not in msg and "1961" not in msg


def test_only_allowed_extra_fields_survive(log_file):
    logging.getLogger("t").info(
        "event", extra={"room_id": "r1", "patient_name": PATIENT, "count": 3}
    )
    entry = lines(log_file)[-1]
    assert entry["room_id"] == "r1" and entry["count"] == 3
    assert "patient_name" not in entry
    assert PATIENT not in log_file.read_text()


def test_exception_messages_are_withheld(log_file):
    try:
        {}[PATIENT]
    except KeyError:
        logging.getLogger("t").exception("lookup failed")
    entry = lines(log_file)[-1]
    assert PATIENT not in log_file.read_text()
    assert entry["exc"].startswith("KeyError (message withheld) at test_logsafe.py:")


def test_phi_repr_and_format_hide_the_value():
    value = Phi(PATIENT)
    assert PATIENT not in str(value) + repr(value) + f"{value}" + f"{value!r}"
    assert value.reveal() == PATIENT


def test_lines_are_json_and_rotate(tmp_path):
    configure_logging(tmp_path, max_bytes=2_000, backups=2)
    try:
        for i in range(200):
            logging.getLogger("t").info("tick %d", i, extra={"count": i})
    finally:
        configure_logging(None)
    files = sorted(p.name for p in tmp_path.iterdir())
    assert files == ["safeconsult.log", "safeconsult.log.1", "safeconsult.log.2"]
    for name in files:
        for line in (tmp_path / name).read_text().splitlines():
            json.loads(line)


@given(st.from_regex(r"\d{7,12}", fullmatch=True), st.text(max_size=20))
def test_long_digit_runs_never_survive(digits, noise):
    assert digits not in scrub_text(f"{noise} {digits} {noise}")

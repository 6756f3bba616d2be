"""The patient link's content parser (app/services/room_patient.py): every field checked."""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from app.core.phi import Phi
from app.services.room_patient import MalformedLink, PatientLink, check_patient, parse, to_wire

GOOD = PatientLink("room", "ab" * 16, 1_700_000_000_000, "user-1", Phi("Jane Doe"),
                   Phi("PT-0042917"))


def test_round_trip_and_cleared_link():
    link, replay = parse("room", to_wire(GOOD))
    assert (link.name.reveal(), link.mrn.reveal(), link.order, replay) == (
        "Jane Doe", "PT-0042917", GOOD.order, False)
    cleared, replay = parse("room", to_wire(PatientLink("room", "cd" * 16, 5, "u", None, None),
                                            replay=True))
    assert not cleared.linked and replay


@pytest.mark.parametrize("change", [
    {"link_id": "AB" * 16}, {"link_id": "ab"}, {"set_ms": 0}, {"set_ms": True},
    {"set_ms": 2**60}, {"set_by": ""}, {"set_by": 5}, {"replay": 1},
    {"patient": {"name": "Jane Doe"}}, {"patient": {"name": "Jane Doe", "mrn": 4711}},
    {"patient": {"name": "", "mrn": "PT-0042917"}},
    {"patient": {"name": "Jane\nDoe", "mrn": "PT-0042917"}},
    {"patient": {"name": " Jane Doe", "mrn": "PT-0042917"}},
    {"patient": {"name": "Jane Doe", "mrn": "-PT"}},
    {"patient": {"name": "Jane Doe", "mrn": "PT;0042917"}},
    {"patient": {"name": "J" * 201, "mrn": "PT-0042917"}},
    {"patient": "Jane Doe"}, {"extra": 1},
])
def test_malformed_fields_are_refused(change):
    with pytest.raises(MalformedLink) as caught:
        parse("room", {**to_wire(GOOD), **change})
    assert "Jane" not in str(caught.value) and "0042917" not in str(caught.value)


def test_missing_field_refused():
    wire = to_wire(GOOD)
    del wire["replay"]
    with pytest.raises(MalformedLink):
        parse("room", wire)


@given(st.dictionaries(st.text(max_size=8), st.none() | st.integers() | st.text(max_size=8)
                       | st.booleans(), max_size=6))
def test_arbitrary_json_is_refused_or_parsed_never_crashes(content):
    with contextlib.suppress(MalformedLink):
        parse("room", content)


def test_check_patient_trims():
    assert check_patient("  Zhang Wei ", " 48213377 ") == ("Zhang Wei", "48213377")

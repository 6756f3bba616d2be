"""Co-view state and the study manifest as they travel: round trips, the parsers'
refusals (hypothesis: any JSON-like value is parsed or refused with a PHI-free reason, never
an unhandled exception), the per-sender sequence gate and the send coalescer."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from app.core.coview import (
    FOLLOWER,
    LEFT,
    PRESENTER,
    CoviewState,
    CoviewUpdate,
    MalformedCoview,
    PanePointer,
    PaneState,
    Region,
    SequenceGate,
    SharedMeasurement,
    parse_update,
)
from app.core.study_manifest import ManifestInvalid, parse_manifest

PANE = PaneState(
    "series1", index=7, center=-600.0, width=1500.0,
    region=Region((120.5, 64.0), (200.0, 150.25)), rotation=1, flip_h=True, invert=True,
    measurements=(SharedMeasurement("distance", ((1.0, 2.0), (3.0, 4.0))),
                  SharedMeasurement("angle", ((1.0, 2.0), (3.0, 4.0), (5.0, 1.0)))))
STATE = CoviewState("study1", (PANE, PaneState("series2", index=3)),
                    PanePointer(1, (10.5, 20.0)))
MINIMAL = CoviewState("a", (PaneState("b"),))

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda children: st.lists(children, max_size=5)
    | st.dictionaries(st.text(max_size=12), children, max_size=6),
    max_leaves=30)


def test_round_trip_through_json():
    update = CoviewUpdate("s1", 5, PRESENTER, STATE)
    assert parse_update(json.loads(json.dumps(update.to_wire()))) == update
    leave = CoviewUpdate("s1", 6, LEFT, None)
    assert parse_update(leave.to_wire()) == leave


def _pane(w):
    return w["state"]["panes"][0]


@pytest.mark.parametrize("change, reason", [
    (lambda w: w.update(v=1), "version"),
    (lambda w: w.update(role="boss"), "role"),
    (lambda w: w.update(seq=-1), "seq"),
    (lambda w: w.update(seq=True), "seq"),
    (lambda w: w.update(extra=1), "unknown"),
    (lambda w: _pane(w).update(index=10**9), "index"),
    (lambda w: _pane(w).update(center=float("nan")), "center"),
    (lambda w: _pane(w).update(width=None), "window"),
    (lambda w: _pane(w).update(region={"focus": [1, 2], "extent": [0, 5]}), "extent"),
    (lambda w: _pane(w).update(region={"focus": [1], "extent": [5, 5]}), "focus"),
    (lambda w: _pane(w).update(region={"focus": [1, 2], "extent": [5, 5], "zoom": 2}),
     "region"),
    (lambda w: _pane(w).update(rotation=4), "rotation"),
    (lambda w: _pane(w).update(series="../x"), "series"),
    (lambda w: _pane(w).update(measurements=[{"kind": "angle", "points": [[0, 0]]}]),
     "measurement"),
    (lambda w: _pane(w).update(patient="DOE^JOHN"), "unknown"),
    (lambda w: w["state"].update(patient="DOE^JOHN"), "unknown"),
    (lambda w: w["state"].update(panes=[]), "panes"),
    (lambda w: w["state"].update(panes=w["state"]["panes"] * 2), "panes"),
    (lambda w: w["state"].update(pointer={"pane": 2, "at": [1, 1]}), "pointer pane"),
    (lambda w: w["state"].update(pointer={"pane": 0, "at": [1]}), "pointer"),
])
def test_malformed_updates_are_refused_with_a_reason(change, reason):
    wire = CoviewUpdate("s1", 5, PRESENTER, STATE).to_wire()
    change(wire)
    with pytest.raises(MalformedCoview, match=reason):
        parse_update(wire)


@settings(max_examples=300, deadline=None)
@given(json_values)
def test_any_value_is_parsed_or_refused(value):
    try:
        parse_update(value)
    except MalformedCoview as exc:
        assert "DOE" not in str(exc)


@settings(max_examples=200, deadline=None)
@given(st.dictionaries(st.sampled_from(sorted(PaneState("b").to_wire())), json_values,
                       max_size=10),
       st.dictionaries(st.sampled_from(["pointer", "study"]), json_values, max_size=2))
def test_any_state_fields_are_parsed_or_refused(fields, top):
    wire = {"v": 2, "session": "s", "seq": 1, "role": FOLLOWER,
            "state": {**MINIMAL.to_wire(), **top,
                      "panes": [{**PaneState("b").to_wire(), **fields}]}}
    try:
        update = parse_update(wire)
    except MalformedCoview:
        return
    assert parse_update(update.to_wire()) == update  # what is accepted is re-sent as is


def test_sequence_gate_last_writer_wins_per_sender():
    gate = SequenceGate()
    up = lambda seq, session="s": CoviewUpdate(session, seq, PRESENTER, STATE)  # noqa: E731
    assert gate.accept("a", "D1", up(1))
    assert not gate.accept("a", "D1", up(1))  # replay
    assert gate.accept("a", "D1", up(3))
    assert not gate.accept("a", "D1", up(2))  # late
    assert gate.accept("a", "D2", up(1))  # another device of the same user
    assert gate.accept("a", "D1", up(1, "s2"))  # a new session starts over


MANIFEST = {
    "type": "sc.study.v1", "study_id": "st1", "room_id": "room1", "sender_user": "u1",
    "sender_device": "D1", "ts_ms": 1, "deidentified": True, "description": "CT HEAD",
    "series": [{"series_id": "se1", "description": "AX", "modality": "CT", "files": [0, 1]}],
    "files": [{"descriptor": {"type": "sc.file.v1"}, "plain_sha256": "ab" * 32}] * 2,
    "counts": {"series": 1, "files": 2}, "signature": "A" * 86 + "==",
}


def test_manifest_round_trip_and_signed_bytes_exclude_the_signature():
    manifest = parse_manifest(MANIFEST)
    assert manifest.to_wire() == MANIFEST
    assert "CT HEAD" not in repr(manifest)  # descriptions are PHI
    assert b"signature" not in manifest.signed_bytes()
    assert manifest.signed_bytes().startswith(b"SC-STUDY-v1\n")


@pytest.mark.parametrize("change", [
    lambda m: m.update(counts={"series": 1, "files": 3}),
    lambda m: m.update(series=[{**m["series"][0], "files": [0, 0]}]),
    lambda m: m.update(series=[{**m["series"][0], "files": [5]}]),
    lambda m: m.update(deidentified="yes"),
    lambda m: m.update(type="sc.study.v2"),
    lambda m: m.update(extra=1),
    lambda m: m.update(files=[]),
])
def test_malformed_manifests_are_refused(change):
    wire = json.loads(json.dumps(MANIFEST))
    change(wire)
    with pytest.raises(ManifestInvalid):
        parse_manifest(wire)


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(sorted(MANIFEST)), json_values)
def test_any_manifest_field_value_is_parsed_or_refused(name, value):
    try:
        manifest = parse_manifest({**MANIFEST, name: value})
    except ManifestInvalid as exc:
        assert "CT HEAD" not in str(exc)
        return
    assert parse_manifest(manifest.to_wire()) == manifest

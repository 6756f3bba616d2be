"""The chat content parser (docs/e2ee.md, "Message content"): everything a sender wrote is
validated; anything else raises MalformedContent, never another exception."""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from app.core.phi import Phi
from app.services.chat_content import (
    MAX_BODY,
    Disappear,
    Edit,
    MalformedContent,
    Recall,
    Receipt,
    Text,
    parse,
    parse_receipt,
    receipt_to_wire,
    to_wire,
)

event_ids = st.from_regex(r"\A[A-Za-z0-9_\-.:$!]{1,128}\Z")
bodies = st.text(min_size=1, max_size=200).filter(lambda t: t.strip())
contents = st.one_of(
    st.builds(lambda b, r: Text(Phi(b), r), bodies, st.none() | event_ids),
    st.builds(lambda t, b, o: Edit(t, Phi(b), o), event_ids, bodies,
              st.integers(0, 2**53)),
    st.builds(Recall, event_ids),
    st.builds(Disappear, st.just(0) | st.integers(60, 365 * 24 * 3600)),
)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner,
                                                                max_size=4),
    max_leaves=10)


def _same(a, b) -> bool:
    return to_wire(a) == to_wire(b)


@given(contents)
def test_what_we_write_reads_back(content):
    assert _same(parse(to_wire(content)), content)


@settings(max_examples=500)
@given(json_values)
def test_anything_else_is_malformed_or_valid_never_a_crash(value):
    try:
        parsed = parse(value)
    except MalformedContent:
        return
    assert parse(to_wire(parsed)) is not None


@settings(max_examples=300)
@given(contents, st.data())
def test_every_field_is_checked(content, data):
    wire = to_wire(content)
    key = data.draw(st.sampled_from(sorted(wire)))
    bad = data.draw(st.one_of(st.none(), st.booleans(), st.floats(), st.lists(st.integers()),
                              st.just(""), st.just(" "), st.just(-1), st.just("x" * 200),
                              st.just("id with spaces")))
    mutated = {**wire, key: bad}
    try:
        parsed = parse(mutated)
    except MalformedContent:
        return
    # Some replacements stay valid (an integer order, an id-shaped text): then read as such.
    assert to_wire(parsed) == mutated


@pytest.mark.parametrize("content", [
    {"msgtype": "text"},
    {"msgtype": "text", "body": "hi", "extra": 1},
    {"msgtype": "text", "body": "x" * (MAX_BODY + 1)},
    {"msgtype": "text", "body": "   "},
    {"msgtype": "text", "body": "hi", "reply_to": ""},
    {"msgtype": "edit", "target": "a", "body": "hi", "order": True},
    {"msgtype": "edit", "target": "a", "body": "hi", "order": -1},
    {"msgtype": "edit", "target": "a", "body": "hi", "order": 1.5},
    {"msgtype": "recall", "target": "a/b"},
    {"msgtype": "recall"},
    {"msgtype": "disappear", "after_s": 59},
    {"msgtype": "disappear", "after_s": True},
    {"msgtype": "disappear", "after_s": 10**9},
    {"msgtype": "poll"},
    {"msgtype": "receipt", "kind": "read", "up_to": "a"},
    [],
    "text",
])
def test_examples_of_malformed_content(content):
    with pytest.raises(MalformedContent):
        parse(content)


@given(st.builds(Receipt, event_ids, st.sampled_from(["delivered", "read"]), event_ids))
def test_receipts_read_back(receipt):
    assert parse_receipt(receipt_to_wire(receipt)) == receipt


@settings(max_examples=300)
@given(json_values)
def test_receipt_parser_never_crashes(value):
    with contextlib.suppress(MalformedContent):
        parse_receipt(value)


@pytest.mark.parametrize("content", [
    {"room_id": "r", "kind": "seen", "up_to": "a"},
    {"room_id": "r", "kind": "read"},
    {"room_id": "r r", "kind": "read", "up_to": "a"},
    {"room_id": "r", "kind": "read", "up_to": "a", "extra": 1},
    {"room_id": "r", "kind": "read", "up_to": 5},
])
def test_examples_of_malformed_receipts(content):
    with pytest.raises(MalformedContent):
        parse_receipt(content)

"""The chat's attachment message content: the signed descriptor plus the name, size and type
shown before download, which must be the descriptor's own. Strict parser (hypothesis)."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from app.core.phi import Phi
from app.services import chat_content
from app.services.chat_content import Attachment, MalformedContent
from tests.unit.services.test_transfer_descriptor import SENDER, make

DESC = make(name="Befund Müller.pdf", size=123_456, mime="application/pdf")
WIRE = chat_content.to_wire(Attachment(DESC))


def test_round_trip_keeps_the_descriptor_and_its_signature():
    parsed = chat_content.parse(json.loads(json.dumps(WIRE)))
    assert isinstance(parsed, Attachment)
    assert parsed.descriptor == DESC
    parsed.descriptor.verify(SENDER)
    assert isinstance(parsed.name, Phi) and parsed.name.reveal() == "Befund Müller.pdf"
    assert parsed.size == 123_456 and parsed.mime.reveal() == "application/pdf"
    assert "Müller" not in repr(parsed)


@pytest.mark.parametrize("change", [
    {"name": "other.pdf"}, {"size": 1}, {"size": True}, {"size": "123456"},
    {"mime": "text/plain"}, {"file": {}}, {"file": "x"}, {"extra": 1},
])
def test_shown_fields_must_be_the_descriptors(change):
    with pytest.raises(MalformedContent):
        chat_content.parse(WIRE | change)


@pytest.mark.parametrize("field", ["file", "name", "size", "mime"])
def test_missing_field_refused(field):
    with pytest.raises(MalformedContent):
        chat_content.parse({k: v for k, v in WIRE.items() if k != field})


_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=12)


@settings(max_examples=300, deadline=None)
@given(field=st.sampled_from(sorted(WIRE)), value=_json)
def test_any_replaced_field_parses_to_the_same_or_is_refused(field, value):
    content = WIRE | {field: value}
    try:
        parsed = chat_content.parse(content)
    except MalformedContent:
        return
    assert isinstance(parsed, Attachment) and content == WIRE


@settings(max_examples=300, deadline=None)
@given(key=st.sampled_from(sorted(WIRE["file"])), value=_json)
def test_any_replaced_descriptor_field_is_refused_or_fails_the_signature(key, value):
    content = WIRE | {"file": WIRE["file"] | {key: value}}
    try:
        parsed = chat_content.parse(content)
    except MalformedContent:
        return
    assert isinstance(parsed, Attachment)
    if parsed.descriptor != DESC:
        from app.services.transfers import ManifestSignatureInvalid
        with pytest.raises(ManifestSignatureInvalid):
            parsed.descriptor.verify(SENDER)

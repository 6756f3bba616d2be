"""The device-administration answers are validated: a malformed one is a ProtocolError,
never a half-built device or a crash further up."""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from app.net.auth_api import ProtocolError
from app.net.device_admin_api import _device

GOOD = {"device_id": "A" * 22, "user_id": "u1", "username": "nora",
        "display_name": "Ward 3 cart", "state": "pending", "order": "none",
        "ed25519": "k" * 43, "created_ms": 1, "approved_ms": None, "last_seen_ms": 5}


def test_a_good_answer_parses():
    device = _device(GOOD)
    assert (device.username, device.state, device.last_seen_ms) == ("nora", "pending", 5)


@pytest.mark.parametrize("field,value", [
    ("state", "lost"), ("order", "format"), ("created_ms", "1"), ("approved_ms", True),
    ("last_seen_ms", 1.5), ("username", None), ("ed25519", 7),
])
def test_a_wrong_field_is_refused(field, value):
    with pytest.raises(ProtocolError):
        _device({**GOOD, field: value})


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=5),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner,
                                                                max_size=3),
    max_leaves=10)


@given(st.one_of(json_values, st.dictionaries(st.sampled_from(sorted(GOOD)), json_values)))
def test_any_json_either_parses_or_is_a_protocol_error(data):
    with contextlib.suppress(ProtocolError):
        _device(data)

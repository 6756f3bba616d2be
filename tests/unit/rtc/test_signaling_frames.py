"""Push frames of type "signal" (the shape server_stub/api/routes/signaling.py writes)."""

from __future__ import annotations

import pytest

from app.net.signaling_api import parse_signal

FRAME = {"type": "signal", "room_id": "room-1", "call_id": "call-00000001", "kind": "offer",
         "sender": "@alice", "sender_device": "DEV1", "payload": {"sdp": "v=0"}}


def test_a_signal_frame_parses():
    signal = parse_signal(FRAME)
    assert signal is not None
    assert (signal.kind, signal.sender, signal.sender_device) == ("offer", "@alice", "DEV1")
    assert signal.payload == {"sdp": "v=0"}


@pytest.mark.parametrize("bad", [
    {**FRAME, "type": "event"}, {**FRAME, "kind": "media"}, {**FRAME, "payload": "x"},
    {k: v for k, v in FRAME.items() if k != "sender_device"}, {**FRAME, "call_id": 7}, "text",
])
def test_anything_else_is_ignored(bad):
    assert parse_signal(bad) is None

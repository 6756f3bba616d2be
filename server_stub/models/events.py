"""Request bodies for room events, to-device messages and call signaling.

``content`` and ``payload`` are opaque JSON objects (ciphertext envelopes): the server checks
their size, never their meaning.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

# Client-chosen ids: long enough for a UUID or 128 random bits, no path or SQL metacharacters.
ID_PATTERN = r"^[A-Za-z0-9._~:-]{8,128}$"
TYPE_PATTERN = r"^[A-Za-z0-9._-]{1,64}$"
MAX_TO_DEVICE_RECIPIENTS = 1000


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class PostEvent(_Strict):
    event_id: str = Field(pattern=ID_PATTERN)
    type: str = Field(pattern=TYPE_PATTERN)
    content: dict[str, Any]


class ToDeviceItem(_Strict):
    user_id: str = Field(min_length=1, max_length=128)
    device_id: str = Field(min_length=1, max_length=128)
    content: dict[str, Any]


class SendToDevice(_Strict):
    txn_id: str = Field(pattern=ID_PATTERN)
    type: str = Field(pattern=TYPE_PATTERN)
    messages: list[ToDeviceItem] = Field(min_length=1, max_length=MAX_TO_DEVICE_RECIPIENTS)


class Signal(_Strict):
    to_user_id: str = Field(min_length=1, max_length=128)
    to_device_id: str = Field(min_length=1, max_length=128)
    call_id: str = Field(pattern=ID_PATTERN)
    kind: Literal["invite", "offer", "answer", "candidate", "ringing", "reject", "hangup"]
    payload: dict[str, Any]



class WsSend(_Strict):
    """A room event sent over the push WebSocket instead of POST."""

    type: Literal["send"]
    room_id: str = Field(min_length=1, max_length=64)
    event_id: str = Field(pattern=ID_PATTERN)
    event_type: str = Field(pattern=TYPE_PATTERN)
    content: dict[str, Any]

    def as_post(self) -> PostEvent:
        # Already validated field by field: no second pass over the content.
        return PostEvent.model_construct(event_id=self.event_id, type=self.event_type,
                                         content=self.content)

"""The plaintext content of chat messages (docs/e2ee.md, "Message content").

Everything here travels inside the Megolm channel as the plaintext of an ``sc.message``
room event; the relay sees only ciphertext. :func:`parse` validates every field of what a
sender's device wrote and returns one of the content types below, or raises
:class:`MalformedContent` -- the chat service keeps such an event as unreadable with the
reason, it never shows half of it. Pure functions, no I/O: tested with hypothesis.
"""

from __future__ import annotations

import base64
import re
import secrets
import time
from dataclasses import dataclass, field
from typing import Any

from app.core.phi import Phi
from app.crypto.errors import E2EEError
from app.services.transfers.descriptor import AttachmentDescriptor, parse_descriptor
from app.services.transfers.errors import DescriptorInvalid

MAX_BODY = 32_000  # characters of a message or an edit
# Event ids are client-chosen (app.services.chat.new_event_id) or relay-made; both fit here.
EVENT_ID = re.compile(r"[A-Za-z0-9_\-.:$!]{1,128}")
MAX_ORDER = 2**53  # an edit's order stays an exact JSON number everywhere


def new_event_id() -> str:
    """Client-chosen event id: 128 random bits, so ids leak nothing and never collide."""
    return "sc_" + base64.urlsafe_b64encode(secrets.token_bytes(16)).decode().rstrip("=")


def now_ms() -> int:
    return int(time.time() * 1000)


class MalformedContent(E2EEError):
    """Decrypted, but its content is not what docs/e2ee.md defines."""

    user_message = "This message is in a form this app does not understand, so it was not shown."


class NotTheSender(E2EEError):
    """An edit or recall of a message by someone other than its author."""

    user_message = "Someone other than its author tried to change this message; ignored."


class RecallTooLate(E2EEError):
    """A recall that arrived after the policy's recall window."""

    user_message = "A message was recalled after the allowed time; it stays as it was."


@dataclass(frozen=True, slots=True)
class Text:
    body: Phi[str]
    reply_to: str | None = None
    urgent: bool = False  # re-notifies the readers until each acknowledges it


@dataclass(frozen=True, slots=True)
class Edit:
    target: str
    body: Phi[str]
    order: int  # the sender's own order of its edits: the highest wins


@dataclass(frozen=True, slots=True)
class Recall:
    target: str


DISAPPEAR_MIN_S, DISAPPEAR_MAX_S = 60, 365 * 24 * 3600


@dataclass(frozen=True, slots=True)
class Disappear:
    """Room setting: messages disappear ``after_s`` seconds after they were sent, on every
    member's device (0: off). The latest setting (relay order) wins; any member may set it."""

    after_s: int


class DescribedFile:
    """Name, type and size of a file message, read from its signed descriptor (one place for
    the wire content and the chat service's cached view)."""

    __slots__ = ()
    descriptor: AttachmentDescriptor

    @property
    def name(self) -> Phi[str]:
        return self.descriptor.name

    @property
    def mime(self) -> Phi[str]:
        return self.descriptor.mime

    @property
    def size(self) -> int:
        return self.descriptor.size


@dataclass(frozen=True, slots=True)
class Attachment(DescribedFile):
    """A file sent in the room: the signed transfer descriptor (docs/e2ee.md,
    "Attachments") and, for display, its name, size and type -- which must be the
    descriptor's own (the receiver verifies the descriptor's signature before downloading)."""

    descriptor: AttachmentDescriptor = field(repr=False)


Content = Text | Edit | Recall | Disappear | Attachment

# Receipts go to the room's members' devices as Olm to-device messages of this type (not
# room events: a device that joins later would see every receipt as a message waiting for
# its key). Content: {"room_id", "kind", "up_to"}.
RECEIPT_TYPE = "sc.receipt"
RECEIPT_KINDS = ("delivered", "read", "ack")  # ack: of one urgent message (``up_to``)
ROOM_ID = EVENT_ID  # relay-made: the same alphabet


@dataclass(frozen=True, slots=True)
class Receipt:
    """The sender has ``room_id`` up to ``up_to`` ("delivered") or has read it ("read")."""

    room_id: str
    kind: str
    up_to: str


def parse_receipt(content: Any) -> Receipt:
    """A receipt's decrypted content, validated field by field."""
    if not isinstance(content, dict) or set(content) != {"room_id", "kind", "up_to"}:
        raise _bad("receipt fields")
    room_id = content["room_id"]
    if not isinstance(room_id, str) or not ROOM_ID.fullmatch(room_id):
        raise _bad("receipt room_id")
    if content["kind"] not in RECEIPT_KINDS:
        raise _bad("unknown receipt kind")
    return Receipt(room_id, content["kind"], _event_id(content["up_to"], "up_to"))


# Presence: the user's own status, sent to the members of their rooms (to-device, Olm).
PRESENCE_TYPE = "sc.presence"
PRESENCE = ("available", "dnd")  # dnd: do not disturb (only urgent messages notify)


def parse_presence(content: Any) -> str:
    if not isinstance(content, dict) or set(content) != {"status"} \
            or content["status"] not in PRESENCE:
        raise _bad("presence")
    return str(content["status"])


def receipt_to_wire(receipt: Receipt) -> dict[str, Any]:
    return {"room_id": receipt.room_id, "kind": receipt.kind, "up_to": receipt.up_to}

_FIELDS = {
    "text": ({"msgtype", "body"}, {"reply_to", "urgent"}),
    "edit": ({"msgtype", "target", "body", "order"}, set()),
    "recall": ({"msgtype", "target"}, set()),
    "disappear": ({"msgtype", "after_s"}, set()),
    "attachment": ({"msgtype", "file", "name", "size", "mime"}, set()),
}


def _bad(reason: str) -> MalformedContent:
    return MalformedContent(f"message content: {reason}")


def _event_id(value: Any, name: str) -> str:
    if not isinstance(value, str) or not EVENT_ID.fullmatch(value):
        raise _bad(f"{name} is not an event id")
    return value


def _body(value: Any) -> Phi[str]:
    if not isinstance(value, str) or not value.strip() or len(value) > MAX_BODY:
        raise _bad("body is not a text of 1 to 32000 characters")
    return Phi(value)


def parse(content: Any) -> Content:
    """The content a sender's device wrote, validated field by field."""
    if not isinstance(content, dict):
        raise _bad("not an object")
    kind = content.get("msgtype")
    if not isinstance(kind, str) or kind not in _FIELDS:
        raise _bad("unknown msgtype")
    required, optional = _FIELDS[kind]
    keys = set(content)
    if not required <= keys or keys - required - optional:
        raise _bad("missing or unexpected fields")
    if kind == "text":
        if "urgent" in content and content["urgent"] is not True:
            raise _bad("urgent is not true")
        return Text(_body(content["body"]), _event_id(content["reply_to"], "reply_to")
                    if "reply_to" in content else None, "urgent" in content)
    if kind == "edit":
        order = content["order"]
        if isinstance(order, bool) or not isinstance(order, int) or not 0 <= order <= MAX_ORDER:
            raise _bad("order is not a non-negative integer")
        return Edit(_event_id(content["target"], "target"), _body(content["body"]), order)
    if kind == "disappear":
        after = content["after_s"]
        if isinstance(after, bool) or not isinstance(after, int) or not (
                after == 0 or DISAPPEAR_MIN_S <= after <= DISAPPEAR_MAX_S):
            raise _bad("after_s is not 0 or 60 s to a year")
        return Disappear(after)
    if kind == "attachment":
        return _attachment(content)
    return Recall(_event_id(content["target"], "target"))


def _attachment(content: dict[str, Any]) -> Attachment:
    try:
        descriptor = parse_descriptor(content["file"])
    except DescriptorInvalid:
        raise _bad("file is not an attachment descriptor") from None
    size = content["size"]
    if isinstance(size, bool) or not isinstance(size, int) or size != descriptor.size:
        raise _bad("size is not the file's")
    if content["name"] != descriptor.name.reveal() or content["mime"] != descriptor.mime.reveal():
        raise _bad("name or type is not the file's")
    return Attachment(descriptor)


def to_wire(content: Content) -> dict[str, Any]:
    """The plaintext object for ``content`` (what :func:`parse` reads back)."""
    if isinstance(content, Text):
        wire: dict[str, Any] = {"msgtype": "text", "body": content.body.reveal()}
        if content.reply_to is not None:
            wire["reply_to"] = content.reply_to
        if content.urgent:
            wire["urgent"] = True
        return wire
    if isinstance(content, Edit):
        return {"msgtype": "edit", "target": content.target, "body": content.body.reveal(),
                "order": content.order}
    if isinstance(content, Disappear):
        return {"msgtype": "disappear", "after_s": content.after_s}
    if isinstance(content, Attachment):
        return {"msgtype": "attachment", "file": content.descriptor.to_wire(),
                "name": content.name.reveal(), "size": content.size,
                "mime": content.mime.reveal()}
    return {"msgtype": "recall", "target": content.target}

"""Co-viewing ("view together") state: what travels in ``sc.coview`` room events, pure.

Each side renders its own full-quality pixels; only the *view state* travels: which series
(by the shared study manifest's ids, never a patient attribute), slice, window/level, zoom
and pan, orientation, the presenter's pointer and measurements. Wire form (inside the
Megolm-encrypted room event; all numbers bounded)::

    {"v": 1, "session": id, "seq": int, "role": "presenter"|"follower"|"left",
     "state": {"study": id, "series": id, "index": int, "center": num, "width": num,
               "zoom": num|null, "pan": [x, y], "rotation": 0-3, "flip_h": bool,
               "flip_v": bool, "invert": bool, "pointer": [row, col]|null,
               "measurements": [{"kind": "distance"|"angle", "points": [[r, c], ...]}]}}

``state`` is absent when ``role`` is ``left`` (the sender stopped). Last writer wins per
sender: an update is applied only if its ``seq`` is above the last one seen from that
sender device (:class:`SequenceGate`). :func:`parse_update` refuses anything else with a
PHI-free reason (:class:`MalformedCoview`).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field, replace
from typing import Any

COVIEW_EVENT = "sc.coview"
VERSION = 1
PRESENTER, FOLLOWER, LEFT = "presenter", "follower", "left"
ROLES = frozenset({PRESENTER, FOLLOWER, LEFT})
DISTANCE, ANGLE = "distance", "angle"
MAX_MEASUREMENTS = 32
MAX_INDEX = 100_000
MAX_COORD = 1e6
MAX_SEQ = 2**53
_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
_STATE_KEYS = frozenset({"study", "series", "index", "center", "width", "zoom", "pan",
                         "rotation", "flip_h", "flip_v", "invert", "pointer", "measurements"})
_TOP_KEYS = frozenset({"v", "session", "seq", "role", "state"})

Point = tuple[float, float]


class MalformedCoview(ValueError):
    """A co-view update that is not applied; the message is a PHI-free reason for the log."""


@dataclass(frozen=True, slots=True)
class SharedMeasurement:
    kind: str  # DISTANCE or ANGLE
    points: tuple[Point, ...]


@dataclass(frozen=True, slots=True)
class CoviewState:
    study: str
    series: str
    index: int = 0
    center: float | None = None  # None: the file's own window
    width: float | None = None
    zoom: float | None = None  # None: fit
    pan: Point = (0.0, 0.0)
    rotation: int = 0
    flip_h: bool = False
    flip_v: bool = False
    invert: bool = False
    pointer: Point | None = None  # (row, col) in image pixels
    measurements: tuple[SharedMeasurement, ...] = field(default_factory=tuple)

    def to_wire(self) -> dict[str, Any]:
        return {
            "study": self.study, "series": self.series, "index": self.index,
            "center": self.center, "width": self.width, "zoom": self.zoom,
            "pan": list(self.pan), "rotation": self.rotation, "flip_h": self.flip_h,
            "flip_v": self.flip_v, "invert": self.invert,
            "pointer": list(self.pointer) if self.pointer is not None else None,
            "measurements": [{"kind": m.kind, "points": [list(p) for p in m.points]}
                             for m in self.measurements],
        }

    def differs_from(self, other: CoviewState | None) -> frozenset[str]:
        """Names of the fields that differ from ``other`` (all of them when None)."""
        if other is None:
            return frozenset(_STATE_KEYS)
        return frozenset(name for name in _STATE_KEYS
                         if getattr(self, name) != getattr(other, name))

    def with_pointer(self, pointer: Point | None) -> CoviewState:
        return replace(self, pointer=pointer)


@dataclass(frozen=True, slots=True)
class CoviewUpdate:
    session: str
    seq: int
    role: str
    state: CoviewState | None  # None when the sender left

    def to_wire(self) -> dict[str, Any]:
        wire: dict[str, Any] = {"v": VERSION, "session": self.session, "seq": self.seq,
                                "role": self.role}
        if self.state is not None:
            wire["state"] = self.state.to_wire()
        return wire


# -- parsing ---------------------------------------------------------------------------------


def _bool(data: dict[str, Any], name: str) -> bool:
    value = data.get(name, False)
    if not isinstance(value, bool):
        raise MalformedCoview(f"{name} is not a boolean")
    return value


def _number(value: Any, name: str, *, low: float = -MAX_COORD, high: float = MAX_COORD) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise MalformedCoview(f"{name} is not a number")
    number = float(value)
    if not math.isfinite(number) or not low <= number <= high:
        raise MalformedCoview(f"{name} out of range")
    return number


def _optional_number(data: dict[str, Any], name: str, **bounds: float) -> float | None:
    value = data.get(name)
    return None if value is None else _number(value, name, **bounds)


def _point(value: Any, name: str) -> Point:
    if not isinstance(value, list) or len(value) != 2:
        raise MalformedCoview(f"{name} is not a point")
    return (_number(value[0], name), _number(value[1], name))


def _id(data: dict[str, Any], name: str) -> str:
    value = data.get(name)
    if not isinstance(value, str) or not _ID.match(value):
        raise MalformedCoview(f"{name} is not an id")
    return value


def _int(value: Any, name: str, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise MalformedCoview(f"{name} is not an integer in range")
    return value


def _measurements(value: Any) -> tuple[SharedMeasurement, ...]:
    if value is None:
        return ()
    if not isinstance(value, list) or len(value) > MAX_MEASUREMENTS:
        raise MalformedCoview("measurements is not a short list")
    out = []
    for item in value:
        if not isinstance(item, dict) or set(item) != {"kind", "points"}:
            raise MalformedCoview("measurement has other fields")
        kind = item["kind"]
        wanted = {DISTANCE: 2, ANGLE: 3}.get(kind) if isinstance(kind, str) else None
        points = item["points"]
        if wanted is None or not isinstance(points, list) or len(points) != wanted:
            raise MalformedCoview("measurement kind or point count")
        out.append(SharedMeasurement(kind, tuple(_point(p, "measurement point")
                                                 for p in points)))
    return tuple(out)


def parse_state(data: Any) -> CoviewState:
    if not isinstance(data, dict):
        raise MalformedCoview("state is not an object")
    extra = set(data) - _STATE_KEYS
    if extra:
        raise MalformedCoview("state has unknown fields")
    center = _optional_number(data, "center")
    width = _optional_number(data, "width", low=1e-6)
    if (center is None) != (width is None):
        raise MalformedCoview("window needs both center and width")
    pointer = data.get("pointer")
    return CoviewState(
        study=_id(data, "study"), series=_id(data, "series"),
        index=_int(data.get("index", 0), "index", 0, MAX_INDEX),
        center=center, width=width,
        zoom=_optional_number(data, "zoom", low=0.01, high=100.0),
        pan=_point(data.get("pan", [0, 0]), "pan"),
        rotation=_int(data.get("rotation", 0), "rotation", 0, 3),
        flip_h=_bool(data, "flip_h"), flip_v=_bool(data, "flip_v"),
        invert=_bool(data, "invert"),
        pointer=None if pointer is None else _point(pointer, "pointer"),
        measurements=_measurements(data.get("measurements")),
    )


def parse_update(data: Any) -> CoviewUpdate:
    """The update in a decrypted ``sc.coview`` content, or :class:`MalformedCoview`."""
    if not isinstance(data, dict):
        raise MalformedCoview("content is not an object")
    if set(data) - _TOP_KEYS:
        raise MalformedCoview("content has unknown fields")
    if data.get("v") != VERSION or isinstance(data.get("v"), bool):
        raise MalformedCoview("unsupported version")
    role = data.get("role")
    if role not in ROLES:
        raise MalformedCoview("unknown role")
    seq = _int(data.get("seq"), "seq", 0, MAX_SEQ)
    session = _id(data, "session")
    if role == LEFT:
        if "state" in data:
            raise MalformedCoview("a leave carries no state")
        return CoviewUpdate(session, seq, role, None)
    return CoviewUpdate(session, seq, role, parse_state(data.get("state")))


class SequenceGate:
    """Last writer wins per sender device: accept an update only if its sequence number is
    above the last accepted one from that sender in that co-view session."""

    def __init__(self) -> None:
        self._last: dict[tuple[str, str, str], int] = {}

    def accept(self, sender: str, device: str, update: CoviewUpdate) -> bool:
        key = (sender, device, update.session)
        if update.seq <= self._last.get(key, -1):
            return False
        self._last[key] = update.seq
        return True


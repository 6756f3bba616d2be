"""Co-viewing ("view together") state: what travels in ``sc.coview`` room events, pure.

Each side renders its own full-quality pixels; only the *view state* travels: which series
(by the shared study manifest's ids, never a patient attribute) in each of the one or two
panes (side by side), and per pane the slice, window/level, the region shown, orientation,
invert and measurements; plus the presenter's pointer and which pane it is in. Wire form
(inside the Megolm-encrypted room event; all numbers bounded)::

    {"v": 2, "session": id, "seq": int, "role": "presenter"|"follower"|"left",
     "state": {"study": id,
               "panes": [{"series": id, "index": int, "center": num|null,
                          "width": num|null,
                          "region": null | {"focus": [row, col], "extent": [w, h]},
                          "rotation": 0-3, "flip_h": bool, "flip_v": bool, "invert": bool,
                          "measurements": [{"kind": "distance"|"angle",
                                            "points": [[r, c], ...]}]}],  # 1 or 2 panes
               "pointer": null | {"pane": 0|1, "at": [row, col]}}}

Zoom and pan travel in *image* coordinates, so that two windows of different sizes show the
same part of the image: ``region`` is the image point at the centre of the view (``focus``,
row and column in image pixels) and the size of the visible area in image pixels along the
screen's axes (``extent``, width and height); the receiver scales so that all of that area
fits its own view. ``region`` null means "fit the whole image". Pointer and measurement
points are image pixels (row, col) too.

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
VERSION = 2
PRESENTER, FOLLOWER, LEFT = "presenter", "follower", "left"
ROLES = frozenset({PRESENTER, FOLLOWER, LEFT})
DISTANCE, ANGLE = "distance", "angle"
MAX_MEASUREMENTS = 32
MAX_PANES = 2
MAX_INDEX = 100_000
MAX_COORD = 1e6
MIN_EXTENT = 1e-3
MAX_SEQ = 2**53
_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
_PANE_KEYS = frozenset({"series", "index", "center", "width", "region", "rotation",
                        "flip_h", "flip_v", "invert", "measurements"})
_STATE_KEYS = frozenset({"study", "panes", "pointer"})
_TOP_KEYS = frozenset({"v", "session", "seq", "role", "state"})

Point = tuple[float, float]


class MalformedCoview(ValueError):
    """A co-view update that is not applied; the message is a PHI-free reason for the log."""


@dataclass(frozen=True, slots=True)
class SharedMeasurement:
    kind: str  # DISTANCE or ANGLE
    points: tuple[Point, ...]


@dataclass(frozen=True, slots=True)
class Region:
    """The part of the image a view shows, independent of the view's size in pixels."""

    focus: Point  # (row, col) image point at the centre of the view
    extent: tuple[float, float]  # (width, height) of the visible area in image pixels

    def to_wire(self) -> dict[str, Any]:
        return {"focus": list(self.focus), "extent": list(self.extent)}


@dataclass(frozen=True, slots=True)
class PaneState:
    series: str
    index: int = 0
    center: float | None = None  # None: the file's own window
    width: float | None = None
    region: Region | None = None  # None: fit the whole image
    rotation: int = 0
    flip_h: bool = False
    flip_v: bool = False
    invert: bool = False
    measurements: tuple[SharedMeasurement, ...] = field(default_factory=tuple)

    def to_wire(self) -> dict[str, Any]:
        return {
            "series": self.series, "index": self.index, "center": self.center,
            "width": self.width,
            "region": self.region.to_wire() if self.region is not None else None,
            "rotation": self.rotation, "flip_h": self.flip_h, "flip_v": self.flip_v,
            "invert": self.invert,
            "measurements": [{"kind": m.kind, "points": [list(p) for p in m.points]}
                             for m in self.measurements],
        }


@dataclass(frozen=True, slots=True)
class PanePointer:
    pane: int  # 0 or 1
    at: Point  # (row, col) in that pane's image pixels


@dataclass(frozen=True, slots=True)
class CoviewState:
    study: str
    panes: tuple[PaneState, ...]  # one, or two side by side
    pointer: PanePointer | None = None

    def to_wire(self) -> dict[str, Any]:
        return {
            "study": self.study, "panes": [p.to_wire() for p in self.panes],
            "pointer": ({"pane": self.pointer.pane, "at": list(self.pointer.at)}
                        if self.pointer is not None else None),
        }

    def with_pointer(self, pointer: PanePointer | None) -> CoviewState:
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


def _region(value: Any) -> Region | None:
    if value is None:
        return None
    if not isinstance(value, dict) or set(value) != {"focus", "extent"}:
        raise MalformedCoview("region has other fields")
    extent = value["extent"]
    if not isinstance(extent, list) or len(extent) != 2:
        raise MalformedCoview("region extent is not a size")
    return Region(_point(value["focus"], "region focus"),
                  (_number(extent[0], "region extent", low=MIN_EXTENT),
                   _number(extent[1], "region extent", low=MIN_EXTENT)))


def parse_pane(data: Any) -> PaneState:
    if not isinstance(data, dict):
        raise MalformedCoview("pane is not an object")
    if set(data) - _PANE_KEYS:
        raise MalformedCoview("pane has unknown fields")
    center = _optional_number(data, "center")
    width = _optional_number(data, "width", low=1e-6)
    if (center is None) != (width is None):
        raise MalformedCoview("window needs both center and width")
    return PaneState(
        series=_id(data, "series"),
        index=_int(data.get("index", 0), "index", 0, MAX_INDEX),
        center=center, width=width, region=_region(data.get("region")),
        rotation=_int(data.get("rotation", 0), "rotation", 0, 3),
        flip_h=_bool(data, "flip_h"), flip_v=_bool(data, "flip_v"),
        invert=_bool(data, "invert"),
        measurements=_measurements(data.get("measurements")),
    )


def parse_state(data: Any) -> CoviewState:
    if not isinstance(data, dict):
        raise MalformedCoview("state is not an object")
    if set(data) - _STATE_KEYS:
        raise MalformedCoview("state has unknown fields")
    panes = data.get("panes")
    if not isinstance(panes, list) or not 1 <= len(panes) <= MAX_PANES:
        raise MalformedCoview("panes is not a list of one or two panes")
    parsed = tuple(parse_pane(p) for p in panes)
    pointer = data.get("pointer")
    at: PanePointer | None = None
    if pointer is not None:
        if not isinstance(pointer, dict) or set(pointer) != {"pane", "at"}:
            raise MalformedCoview("pointer has other fields")
        at = PanePointer(_int(pointer["pane"], "pointer pane", 0, len(parsed) - 1),
                         _point(pointer["at"], "pointer"))
    return CoviewState(_id(data, "study"), parsed, at)


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


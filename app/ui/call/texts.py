"""The call view's words: the per-peer state line, quality, route (docs/calls.md)."""

from __future__ import annotations

from PySide6.QtCore import QCoreApplication

from app.ui.i18n import fill

GOOD_FPS = 20.0  # remote video frames a second for "good"
FAIR_FPS = 8.0


def quality(fps: float) -> str:
    """"good", "fair" or "poor" from the remote video frame rate just measured."""
    if fps >= GOOD_FPS:
        return "good"
    if fps >= FAIR_FPS:
        return "fair"
    return "poor"


def quality_text(level: str) -> str:
    translate = QCoreApplication.translate
    return {
        "good": translate("CallView", "Good connection"),
        "fair": translate("CallView", "Fair connection"),
        "poor": translate("CallView", "Poor connection"),
    }[level]


def route_text(route: str | None) -> str:
    translate = QCoreApplication.translate
    if route == "relay":
        return translate("CallView", "Through the TURN relay")
    if route == "direct":
        return translate("CallView", "Direct")
    return translate("CallView", "Route not known yet")


def security_text(verified: bool) -> str:
    translate = QCoreApplication.translate
    if verified:
        return translate("CallView", "End-to-end encrypted · verified device")
    return translate("CallView", "End-to-end encrypted · unverified device")


def peer_line(state: str, *, verified: bool, route: str | None = None, level: str = "good",
              code: str | None = None) -> str:
    """The state line under a peer's tile for a link in ``state`` (``LinkState`` value)."""
    translate = QCoreApplication.translate
    if state == "connected":
        lines = [security_text(verified),
                 " · ".join((route_text(route), quality_text(level)))]
        if code:
            lines.append(fill(translate("CallView", "Verification code: %1"), code))
        return "\n".join(lines)
    if state == "rebuilding":
        return translate("CallView", "Connection lost — reconnecting…")
    if state == "refused":
        return translate("CallView", "Refused: this device's identity could not be confirmed. "
                                     "No media was exchanged.")
    if state == "closed":
        return translate("CallView", "Left the call")
    return translate("CallView", "Connecting…")

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


def drop_text(reason: str) -> str:
    """The call window's notice when this device removed a participant (no names: the
    tile that went is the who), or ended the call because we left the consult."""
    translate = QCoreApplication.translate
    if reason == "not_member":
        return translate("CallView", "A participant is no longer a member of this consult; "
                                     "they were removed from the call.")
    if reason == "removed":
        return translate("CallView", "You are no longer a member of this consult, so the "
                                     "call ended.")
    return translate("CallView", "A participant's device is no longer trusted; it was "
                                 "removed from the call.")


POOR_LOSS = 0.10  # share of probes lost from which the network test warns
POOR_RTT_MS = 300.0


def network_text(report) -> str:
    """The pre-join network test's line for a ``NetworkReport`` (None: still testing)."""
    translate = QCoreApplication.translate
    if report is None:
        return translate("CallView", "Network: testing…")
    figures = ""
    if report.rtt_ms is not None and report.loss is not None:
        figures = fill(translate("CallView", "%1 ms round trip to the relay · %2% lost"),
                       f"{report.rtt_ms:.1f}" if report.rtt_ms < 10 else str(round(report.rtt_ms)),
                       str(round(report.loss * 100)))
    if report.verdict == "good":
        text = fill(translate("CallView", "Network: good · %1"), figures)
    elif report.verdict == "turn_only":
        text = fill(translate("CallView", "Network: TURN only — media goes through the "
                                          "hospital's relay · %1"), figures)
    elif report.verdict == "direct_only":
        text = translate("CallView", "Network: direct only — the hospital's TURN relay cannot "
                                     "be reached, so calls work only between devices that can "
                                     "reach each other directly.")
    elif report.reason == "server_unreachable":
        text = translate("CallView", "Network: blocked — the server cannot be reached.")
    else:
        text = translate("CallView", "Network: blocked — calls must go through the hospital's "
                                     "TURN relay, and it cannot be reached.")
    poor = report.verdict in ("good", "turn_only") and report.loss is not None and (
        report.loss >= POOR_LOSS or (report.rtt_ms or 0.0) >= POOR_RTT_MS)
    if poor:
        text += " " + translate("CallView", "Expect a choppy picture and sound.")
    return text

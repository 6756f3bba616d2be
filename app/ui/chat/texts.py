"""Words the chat widgets share: device trust, why a verification ended, times, names."""

from __future__ import annotations

from PySide6.QtCore import QCoreApplication, QDateTime, QLocale

from app.crypto.store import TrustLevel
from app.ui.i18n import fill


def trust_text(trust: TrustLevel, *, allowed: bool) -> str:
    """How far this device trusts a contact's device, as a clinician reads it."""
    translate = QCoreApplication.translate
    if trust is TrustLevel.VERIFIED:
        return translate("ChatTexts", "Verified")
    if trust is TrustLevel.BLOCKED:
        return translate("ChatTexts", "Blocked")
    if trust is TrustLevel.UNVERIFIED:
        return translate("ChatTexts", "New device, not verified")
    if allowed:
        return translate("ChatTexts", "Trusted under policy")
    return translate("ChatTexts", "Not verified (receives no messages)")


def trust_state(trust: TrustLevel) -> str:
    """The label ``state`` property the theme colours: ok, bad or plain."""
    if trust is TrustLevel.VERIFIED:
        return "ok"
    if trust in (TrustLevel.UNVERIFIED, TrustLevel.BLOCKED):
        return "bad"
    return ""


def fingerprint(ed25519: str) -> str:
    """A device key in groups of four, for reading aloud over the phone."""
    return " ".join(ed25519[i:i + 4] for i in range(0, len(ed25519), 4))


def short_device(device_id: str) -> str:
    return device_id if len(device_id) <= 12 else device_id[:10] + "…"


def cancel_text(reason: str | None, *, by_peer: bool, name: str) -> str:
    """Why a verification ended, for the person who has to decide what to do next."""
    translate = QCoreApplication.translate
    if reason == "mismatch":
        if by_peer:
            return fill(translate("ChatTexts", "%1 said the emoji did not match. The device "
                                  "was not verified. If this happens again, call them and "
                                  "contact IT: someone may be intercepting."), name)
        return translate("ChatTexts", "The emoji did not match, so the device was not "
                         "verified. If this happens again, contact IT: someone may be "
                         "intercepting.")
    if reason == "timeout":
        return translate("ChatTexts", "The verification took too long and was stopped. "
                         "Start again when you are both ready.")
    if reason in ("key_mismatch", "commitment_mismatch"):
        return translate("ChatTexts", "The security check failed: the device's keys did not "
                         "match. The device was not verified. Contact IT.")
    if reason in ("protocol", "unexpected_message"):
        return translate("ChatTexts", "The verification stopped because of an unexpected "
                         "message. Start again.")
    if by_peer:
        return fill(translate("ChatTexts", "%1 cancelled the verification."), name)
    return translate("ChatTexts", "The verification was cancelled.")


def time_text(ts_ms: int) -> str:
    """"14:05" today, "12 Mar 14:05" on another day (in the user's locale)."""
    when = QDateTime.fromMSecsSinceEpoch(ts_ms)
    locale = QLocale()
    clock = locale.toString(when.time(), QLocale.FormatType.ShortFormat)
    if when.date() == QDateTime.currentDateTime().date():
        return clock
    return locale.toString(when.date(), "d MMM") + " " + clock


def display_name(username: str | None, user_id: str) -> str:
    return username or fill(QCoreApplication.translate("ChatTexts", "User %1"), user_id[:8])

"""Times and short texts shared by the access-review and emergency-access widgets."""

from __future__ import annotations

from PySide6.QtCore import QCoreApplication, QDateTime

from app.ui.i18n import fill


def clock_time(ms: int) -> str:
    """``HH:MM`` local time, with the date in front when it is not today."""
    when = QDateTime.fromMSecsSinceEpoch(ms)
    if when.date() == QDateTime.currentDateTime().date():
        return when.toString("HH:mm")
    return when.toString("yyyy-MM-dd HH:mm")


def timestamp(ms: int) -> str:
    return QDateTime.fromMSecsSinceEpoch(ms).toString("yyyy-MM-dd HH:mm:ss")


def grant_text(expires_ms: int | None, *, break_glass: bool = False) -> str:
    """What a room list shows about the user's access: its end, visibly."""
    translate = QCoreApplication.translate
    if expires_ms is None:
        return translate("AccessTexts", "No end date")
    if break_glass:
        return fill(translate("AccessTexts", "Emergency access until %1"), clock_time(expires_ms))
    return fill(translate("AccessTexts", "Until %1"), clock_time(expires_ms))


def role_in_room(role: str) -> str:
    translate = QCoreApplication.translate
    return {
        "owner": translate("AccessTexts", "Owner"),
        "member": translate("AccessTexts", "Member"),
        "observer": translate("AccessTexts", "Observer (read only)"),
    }.get(role, role)


def fit_bold(button) -> None:
    """A default button is drawn bold by the theme: leave room for its text in bold."""
    from PySide6.QtGui import QFont, QFontMetrics

    bold = QFont(button.font())
    bold.setBold(True)
    button.setMinimumWidth(QFontMetrics(bold).horizontalAdvance(button.text()) + 48)

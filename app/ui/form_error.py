"""The error line under a form (sign-in, unlock): shown only when there is something to say,
and read out by screen readers."""

from __future__ import annotations

from PySide6.QtWidgets import QLabel


def form_error_label(object_name: str) -> QLabel:
    """The error line itself: the theme's error colour, wrapped, hidden until needed."""
    label = QLabel()
    label.setObjectName(object_name)
    label.setProperty("role", "error")
    label.setWordWrap(True)
    label.hide()
    return label


def show_form_error(label: QLabel, message: str) -> None:
    label.setText(message)
    label.setVisible(bool(message))
    label.setAccessibleDescription(message)

"""The error line under a form (sign-in, unlock): shown only when there is something to say,
and read out by screen readers."""

from __future__ import annotations

from PySide6.QtWidgets import QLabel


def show_form_error(label: QLabel, message: str) -> None:
    label.setText(message)
    label.setVisible(bool(message))
    label.setAccessibleDescription(message)

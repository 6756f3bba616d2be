"""Recording consent: the dialog a participant answers, and the indicator every side shows
(docs/calls.md, "Recording")."""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import QCoreApplication, Qt
from PySide6.QtWidgets import QDialog, QDialogButtonBox, QLabel, QVBoxLayout, QWidget

from app.ui.i18n import fill


class ConsentDialog(QDialog):
    """"<host> asks to record this consult": I agree / Don't record. Closing = no."""

    def __init__(self, host_name: str, request: Any, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        translate = QCoreApplication.translate
        self.request = request
        self.setObjectName("recordingConsent")
        self.setWindowTitle(translate("CallView", "Recording consent"))
        self.setWindowFlag(Qt.WindowType.WindowStaysOnTopHint)
        self.message = QLabel(fill(translate(
            "CallView", "%1 asks to record this video consult. Recording starts only if "
            "everyone in the call agrees, and everyone sees when it runs. The recording is "
            "encrypted and kept on %1's device; your agreement is signed by this device and "
            "stored with it."), host_name), self)
        self.message.setWordWrap(True)
        self.message.setMinimumWidth(380)
        buttons = QDialogButtonBox(self)
        self.agree_button = buttons.addButton(translate("CallView", "I agree"),
                                              QDialogButtonBox.ButtonRole.AcceptRole)
        self.agree_button.setObjectName("consentAgree")
        self.decline_button = buttons.addButton(translate("CallView", "Don't record"),
                                                QDialogButtonBox.ButtonRole.RejectRole)
        self.decline_button.setObjectName("consentDecline")
        self.decline_button.setDefault(True)
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        _roomy(self.agree_button)
        _roomy(self.decline_button)
        layout = QVBoxLayout(self)
        layout.addWidget(self.message)
        layout.addWidget(buttons)


def indicator_text(state: str) -> str:
    """The recording line of a call window for a ``RecordingState`` value ("" = hidden)."""
    translate = QCoreApplication.translate
    return {
        "asking": translate("CallView", "Asking everyone for consent to record…"),
        "recording": translate("CallView", "● Recording — everyone in the call agreed"),
        "refused": translate("CallView", "Not recorded: not everyone agreed"),
        "stopped": translate("CallView", "Recording stopped"),
    }.get(state, "")


def _roomy(button) -> None:
    """Room for the default button's bold text (it is measured before the style bolds it)."""
    button.setMinimumWidth(button.sizeHint().width() + 28)

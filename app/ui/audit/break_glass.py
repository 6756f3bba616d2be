"""The emergency-access ("break-glass") dialog.

A clinician who is not a member of a consult may open it in an emergency: the dialog asks
for the consult and a reason, says plainly that the access is recorded and reviewed by an
auditor, and only then sends the request. The reason may name the patient: its editor is
PHI-tagged (hidden by the lock, covered in a shared screen) and the text never goes into a
log line or the audit detail -- the server keeps it for the reviewer only.
"""

from __future__ import annotations

from PySide6.QtCore import QEvent, Qt
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QLabel,
    QLineEdit,
    QPlainTextEdit,
    QVBoxLayout,
    QWidget,
)

from app.services.access_review import (
    MAX_REASON_CHARS,
    MIN_REASON_CHARS,
    BreakGlassGrant,
    BreakGlassService,
    ReasonRefused,
    clean_reason,
)
from app.ui.asyncbridge import TaskRunner
from app.ui.audit.texts import fit_bold
from app.ui.form_error import form_error_label, show_form_error
from app.ui.i18n import fill
from app.ui.phi import mark_phi


class BreakGlassDialog(QDialog):
    """Accepted only after the server granted access; :attr:`grant` holds the grant."""

    def __init__(self, service: BreakGlassService, runner: TaskRunner, *, room_id: str = "",
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("breakGlassDialog")
        self.setModal(True)
        self._service, self._runner = service, runner
        self.grant: BreakGlassGrant | None = None
        self.heading = QLabel()
        self.heading.setProperty("role", "heading")
        self.warning = QLabel()
        self.warning.setObjectName("breakGlassWarning")
        self.warning.setWordWrap(True)
        self.warning.setStyleSheet(
            "QLabel#breakGlassWarning { background: #fdecea; color: #7a1c12;"
            " border: 1px solid #e0a39b; border-radius: 4px; padding: 8px; }")
        self.room = QLineEdit(room_id)
        self.room.setObjectName("breakGlassRoom")
        mark_phi(self.room)  # a consult id leads to one patient
        self.reason = QPlainTextEdit()
        self.reason.setObjectName("breakGlassReason")
        self.reason.setTabChangesFocus(True)
        self.reason.setMinimumHeight(110)
        mark_phi(self.reason)
        self.count = QLabel()
        self.count.setProperty("role", "subtle")
        self.error = form_error_label("formError")
        self.buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel)
        self.submit = self.buttons.button(QDialogButtonBox.StandardButton.Ok)
        self.submit.setObjectName("breakGlassSubmit")
        self.submit.setDefault(True)
        self.buttons.accepted.connect(self.send)
        self.buttons.rejected.connect(self.reject)
        self.form = QFormLayout()
        self.room_label, self.reason_label = QLabel(), QLabel()
        self.room_label.setBuddy(self.room)
        self.reason_label.setBuddy(self.reason)
        self.form.addRow(self.room_label, self.room)
        self.form.addRow(self.reason_label, self.reason)
        self.form.addRow("", self.count)
        layout = QVBoxLayout(self)
        layout.setSpacing(12)
        layout.addWidget(self.heading)
        layout.addWidget(self.warning)
        layout.addLayout(self.form)
        layout.addWidget(self.error)
        layout.addWidget(self.buttons)
        self.room.textChanged.connect(self._update)
        self.reason.textChanged.connect(self._update)
        self.setMinimumSize(self.sizeHint().expandedTo(self.minimumSizeHint()))
        self.resize(600, 470)
        self.retranslate()
        (self.reason if room_id else self.room).setFocus()

    def reason_length(self) -> int:
        return len(" ".join(self.reason.toPlainText().split()))

    def _update(self) -> None:
        n = self.reason_length()
        self.count.setText(fill(self.tr("%1 characters (at least %2, at most %3)"),
                                str(n), str(MIN_REASON_CHARS), str(MAX_REASON_CHARS)))
        busy = not self.room.isEnabled()
        self.submit.setEnabled(not busy and bool(self.room.text().strip())
                               and MIN_REASON_CHARS <= n <= MAX_REASON_CHARS)

    def send(self) -> None:
        room = self.room.text().strip()
        try:
            reason = clean_reason(self.reason.toPlainText())
        except ReasonRefused:
            show_form_error(self.error, fill(self.tr(
                "Give the reason for emergency access: at least %1 characters."),
                str(MIN_REASON_CHARS)))
            return
        if not room:
            return
        self._busy(True)
        show_form_error(self.error, "")
        self._runner.run_task(self._service.request(room, reason), owner=self,
                              on_result=self._granted, on_error=self._refused)

    def _granted(self, grant: BreakGlassGrant) -> None:
        self.grant = grant
        self.reason.clear()  # the reason lives on the server, for the reviewer only
        self.accept()

    def _refused(self, message: str) -> None:
        self._busy(False)
        show_form_error(self.error, message)

    def _busy(self, busy: bool) -> None:
        self.room.setEnabled(not busy)
        self.reason.setReadOnly(busy)
        self._update()

    def retranslate(self) -> None:
        self.setWindowTitle(self.tr("Emergency access"))
        self.heading.setText(self.tr("Emergency access to a consult"))
        self.warning.setText(self.tr(
            "Use this only when a patient needs care now and you are not a member of the "
            "consult. You get read-only access for a limited time. Your name, this device, "
            "the time and your reason are recorded, and an auditor reviews every emergency "
            "access afterwards."))
        self.room_label.setText(self.tr("&Consult ID"))
        self.reason_label.setText(self.tr("&Reason"))
        self.reason.setPlaceholderText(self.tr(
            "Why you need access now, e.g. \"Unresponsive patient in resus, need medication "
            "history\""))
        self.submit.setText(self.tr("Request emergency access"))
        fit_bold(self.submit)
        self.setAccessibleName(self.tr("Emergency access"))
        self._update()

    def changeEvent(self, event: QEvent) -> None:
        if event.type() == QEvent.Type.LanguageChange:
            self.retranslate()
        super().changeEvent(event)


def ask_break_glass(service: BreakGlassService, runner: TaskRunner, parent: QWidget, *,
                    room_id: str = "") -> BreakGlassDialog:
    """Open the dialog (non-blocking); the caller connects to ``accepted``."""
    dialog = BreakGlassDialog(service, runner, room_id=room_id, parent=parent)
    dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
    dialog.show()
    return dialog

"""Writing a message: Enter sends, Shift+Enter starts a new line.

What is typed is patient data: the composer is PHI-tagged (hidden by the lock, redacted from a
shared screen). *Attach* asks the view for a file (enabled once the view has a transfer
engine); uploads in progress show as rows above the text with bytes, speed, time left and
Cancel (app/ui/chat/transfers.py).
"""

from __future__ import annotations

from PySide6.QtCore import QCoreApplication, Qt, Signal
from PySide6.QtGui import QKeyEvent
from PySide6.QtWidgets import (
    QCheckBox,
    QHBoxLayout,
    QLabel,
    QPlainTextEdit,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from app.ui.chat.transfers import TransferRow
from app.ui.phi import mark_phi

MAX_LENGTH = 16_000  # characters; a consult note, not a document (files go as attachments)


class MessageEdit(QPlainTextEdit):
    submitted = Signal()

    def keyPressEvent(self, event: QKeyEvent) -> None:
        if event.key() in (Qt.Key.Key_Return, Qt.Key.Key_Enter) and not (
            event.modifiers() & Qt.KeyboardModifier.ShiftModifier
        ):
            self.submitted.emit()
            return
        super().keyPressEvent(event)


REPLY, EDIT = "reply", "edit"


class Composer(QWidget):
    """Emits ``send(text)`` with the stripped text; clears itself when the view says so.

    It may be replying to a message or editing one of ours (``mode``/``target``, shown in a
    bar above the text with a way out); the view reads them when ``send`` comes."""

    send = Signal(str)
    attach_requested = Signal()
    cancel_upload = Signal(str)  # transfer id

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("composer")
        self.edit = MessageEdit()
        self.edit.setObjectName("composerEdit")
        mark_phi(self.edit)
        self.edit.setTabChangesFocus(True)
        self.edit.setFixedHeight(72)
        self.edit.submitted.connect(self.submit)
        self.edit.textChanged.connect(self._sync)
        self.attach = QPushButton()
        self.attach.setObjectName("composerAttach")
        self.attach.setEnabled(False)
        self.attach.clicked.connect(self.attach_requested)
        self._attach_available = False
        self.uploads: dict[str, TransferRow] = {}
        self.upload_area = QWidget()
        self.upload_area.setObjectName("composerUploads")
        self._upload_column = QVBoxLayout(self.upload_area)
        self._upload_column.setContentsMargins(0, 0, 0, 0)
        self._upload_column.setSpacing(4)
        self.upload_area.hide()
        self.send_button = QPushButton()
        self.send_button.setObjectName("composerSend")
        self.send_button.setDefault(True)
        # The theme paints default buttons blue; a disabled Send must not look pressable.
        self.send_button.setStyleSheet(
            "QPushButton:disabled { background: palette(button); color: palette(mid); "
            "font-weight: 600; }")
        self.send_button.clicked.connect(self.submit)
        self.urgent = QCheckBox()
        self.urgent.setObjectName("composerUrgent")
        self.notice = QLabel()
        self.notice.setObjectName("composerNotice")
        self.notice.setWordWrap(True)
        self.notice.setProperty("role", "subtle")
        self.notice.hide()
        self.mode = ""  # "", REPLY or EDIT
        self.target: str | None = None
        self.context = QLabel()
        self.context.setObjectName("composerContext")
        mark_phi(self.context)  # the quoted message
        self.context.setTextFormat(Qt.TextFormat.PlainText)
        self.context.setProperty("role", "subtle")
        self.cancel_context = QPushButton()
        self.cancel_context.setObjectName("composerCancelContext")
        self.cancel_context.setFlat(True)
        self.cancel_context.clicked.connect(self.leave_context)
        self.context_bar = QWidget()
        bar = QHBoxLayout(self.context_bar)
        bar.setContentsMargins(0, 0, 0, 0)
        bar.addWidget(self.context, 1)
        bar.addWidget(self.cancel_context)
        self.context_bar.hide()
        row = QHBoxLayout()
        row.setSpacing(8)
        row.addWidget(self.attach, 0, Qt.AlignmentFlag.AlignBottom)
        row.addWidget(self.edit, 1)
        actions = QVBoxLayout()
        actions.setSpacing(2)
        actions.addStretch(1)
        actions.addWidget(self.urgent)
        actions.addWidget(self.send_button)
        row.addLayout(actions)
        column = QVBoxLayout(self)
        column.setContentsMargins(16, 6, 16, 12)
        column.setSpacing(4)
        column.addWidget(self.notice)
        column.addWidget(self.context_bar)
        column.addWidget(self.upload_area)
        column.addLayout(row)
        self._blocked = ""
        self.retranslate()
        self._sync()

    def set_attach_available(self, available: bool) -> None:
        """Files can be sent (the view has a transfer engine)."""
        self._attach_available = available
        self._sync()
        self.retranslate()

    def add_upload(self, transfer_id: str, name: str) -> TransferRow:
        """A row for an upload in progress (``name``: the file's, PHI: the composer is
        tagged); the view routes the engine's progress to it."""
        row = TransferRow(transfer_id, name)
        row.cancel.connect(self.cancel_upload)
        self.uploads[transfer_id] = row
        self._upload_column.addWidget(row)
        self.upload_area.show()
        return row

    def remove_upload(self, transfer_id: str) -> None:
        row = self.uploads.pop(transfer_id, None)
        if row is not None:
            self._upload_column.removeWidget(row)
            row.deleteLater()
        self.upload_area.setVisible(bool(self.uploads))

    def text(self) -> str:
        return self.edit.toPlainText().strip()

    def set_blocked(self, reason: str) -> None:
        """Writing is not possible now (``reason`` says why); "" allows it again."""
        self._blocked = reason
        self.notice.setText(reason)
        self.notice.setVisible(bool(reason))
        self.edit.setReadOnly(bool(reason))
        self._sync()

    @property
    def blocked(self) -> bool:
        return bool(self._blocked)

    def submit(self) -> None:
        text = self.text()
        if not text or self._blocked or len(text) > MAX_LENGTH:
            return
        self.send.emit(text)

    def clear(self) -> None:
        self.edit.clear()
        self.urgent.setChecked(False)
        self.leave_context()

    def start_reply(self, event_id: str, quote: str) -> None:
        """Answer ``event_id``; ``quote`` shows what (PHI: the composer is tagged)."""
        self.mode, self.target = REPLY, event_id
        self.context.setText(quote)
        self.context_bar.show()
        self.edit.setFocus()

    def start_edit(self, event_id: str, text: str) -> None:
        """Change our message ``event_id``, starting from its current ``text``."""
        self.mode, self.target = EDIT, event_id
        self.context.setText(QCoreApplication.translate("Composer", "Editing your message"))
        self.edit.setPlainText(text)
        self.context_bar.show()
        self.edit.setFocus()

    def leave_context(self) -> None:
        if self.mode == EDIT:
            self.edit.clear()
        self.mode, self.target = "", None
        self.context.clear()
        self.context_bar.hide()

    def _sync(self) -> None:
        text = self.text()
        self.send_button.setEnabled(bool(text) and not self._blocked and len(text) <= MAX_LENGTH)
        self.attach.setEnabled(self._attach_available and not self._blocked)

    def retranslate(self) -> None:
        translate = QCoreApplication.translate
        self.edit.setPlaceholderText(translate(
            "Composer", "Write a message (Enter sends, Shift+Enter for a new line)"))
        self.edit.setAccessibleName(translate("Composer", "Message"))
        self.send_button.setText(translate("Composer", "Send"))
        self.attach.setText(translate("Composer", "Attach"))
        self.cancel_context.setText(translate("Composer", "Cancel"))
        self.urgent.setText(translate("Composer", "Urgent"))
        self.urgent.setToolTip(translate("Composer", "Notify again until each reader "
                                         "acknowledges it, even under do not disturb"))
        self.attach.setToolTip(
            translate("Composer", "Send a file, end-to-end encrypted") if self._attach_available
            else translate("Composer", "Attachments are not available yet."))
        for row in self.uploads.values():
            row.retranslate()

"""Files in the chat: a transfer's progress row (bytes, speed, time left, Cancel) and the
attachment box of a file message (name and size; Download, then Open / Save as...).

The file's name is patient data: both widgets live inside PHI-tagged parents (the timeline,
the composer) and set their texts as plain text. Nothing here touches the file's bytes:
the chat view drives the transfer engine and tells these widgets what happened.
"""

from __future__ import annotations

from PySide6.QtCore import QCoreApplication, Qt, Signal
from PySide6.QtGui import QImage, QPixmap
from PySide6.QtWidgets import (
    QDialog,
    QFrame,
    QHBoxLayout,
    QLabel,
    QPlainTextEdit,
    QProgressBar,
    QPushButton,
    QScrollArea,
    QVBoxLayout,
    QWidget,
)

from app.services.transfers import TransferProgress
from app.services.transfers import progress as phases
from app.ui.i18n import fill
from app.ui.phi import mark_phi

MAX_TEXT_PREVIEW = 2_000_000  # characters
MAX_PREVIEW_BYTES = 64 * 1024 * 1024  # a file larger than this is not read into memory to show
_TEXT_TYPES = ("application/json",)


def previewable(mime: str, size: int) -> bool:
    """Whether *Open* shows this file in the app (else it says to use Save as...)."""
    return size <= MAX_PREVIEW_BYTES and (
        mime.startswith(("image/", "text/")) or mime in _TEXT_TYPES)

_UNITS = ("B", "KB", "MB", "GB", "TB")


def size_text(size: float) -> str:
    """1536 -> "1.5 KB" (decimal units, as file managers show them)."""
    unit = 0
    while size >= 1000 and unit < len(_UNITS) - 1:
        size /= 1000
        unit += 1
    return f"{int(size)} {_UNITS[unit]}" if unit == 0 else f"{size:.1f} {_UNITS[unit]}"


def duration_text(seconds: float) -> str:
    translate = QCoreApplication.translate
    if seconds < 1:
        return translate("Transfers", "under 1 s")
    seconds = round(seconds)
    if seconds < 60:
        return fill(translate("Transfers", "%1 s"), str(seconds))
    if seconds < 3600:
        return fill(translate("Transfers", "%1 min %2 s"), str(seconds // 60),
                    str(seconds % 60))
    return fill(translate("Transfers", "%1 h %2 min"), str(seconds // 3600),
                str(seconds % 3600 // 60))


def progress_text(p: TransferProgress) -> str:
    """"1.2 MB of 5.0 MB · 800.0 KB/s · 6 s left", or what the transfer is doing."""
    translate = QCoreApplication.translate
    if p.phase == phases.PREPARING:
        return fill(translate("Transfers", "Encrypting… %1 of %2"), size_text(p.bytes_done),
                    size_text(p.bytes_total))
    if p.phase == phases.VERIFYING:
        return translate("Transfers", "Verifying the file…")
    if p.phase == phases.PAUSED:
        return translate("Transfers", "Paused: resumes when the connection is back")
    if p.phase == phases.DONE:
        return translate("Transfers", "Done")
    if p.phase == phases.CANCELLED:
        return translate("Transfers", "Cancelled")
    if p.phase == phases.FAILED:
        return translate("SafeConsultError", p.error_message) if p.error_message \
            else translate("Transfers", "Failed")
    parts = [fill(translate("Transfers", "%1 of %2"), size_text(p.bytes_done),
                  size_text(p.bytes_total))]
    if p.speed_bps > 0:
        parts.append(fill(translate("Transfers", "%1/s"), size_text(p.speed_bps)))
    if p.eta_s is not None:
        parts.append(fill(translate("Transfers", "%1 left"), duration_text(p.eta_s)))
    return " · ".join(parts)


class TransferRow(QWidget):
    """One running transfer: a bar, what it is doing, and Cancel. A transfer that ended
    without finishing (failed, cancelled) keeps its words and offers Dismiss instead."""

    cancel = Signal(str)  # transfer id

    def __init__(self, transfer_id: str, title: str = "",
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("transferRow")
        self.transfer_id = transfer_id
        self.phase = ""
        self.title = QLabel(title)
        self.title.setObjectName("transferTitle")
        self.title.setTextFormat(Qt.TextFormat.PlainText)
        self.title.setVisible(bool(title))
        self.bar = QProgressBar()
        self.bar.setObjectName("transferBar")
        self.bar.setRange(0, 1000)
        self.bar.setTextVisible(False)
        self.bar.setFixedHeight(8)
        self.detail = QLabel()
        self.detail.setObjectName("transferDetail")
        self.detail.setProperty("role", "subtle")
        self.cancel_button = QPushButton()
        self.cancel_button.setObjectName("transferCancel")
        self.cancel_button.clicked.connect(lambda: self.cancel.emit(self.transfer_id))
        row = QHBoxLayout()
        row.setContentsMargins(0, 0, 0, 0)
        row.addWidget(self.bar, 1)
        row.addWidget(self.cancel_button)
        column = QVBoxLayout(self)
        column.setContentsMargins(0, 0, 0, 0)
        column.setSpacing(2)
        column.addWidget(self.title)
        column.addLayout(row)
        column.addWidget(self.detail)
        self.detail.setText(QCoreApplication.translate("Transfers", "Starting…"))
        self.retranslate()

    def update_progress(self, p: TransferProgress) -> None:
        self.phase = p.phase
        self.bar.setValue(int(1000 * min(1.0, p.fraction)))
        self.detail.setText(progress_text(p))
        self.cancel_button.setEnabled(p.phase != phases.DONE)
        self.retranslate()

    def set_waiting(self, fraction: float = 0.0) -> None:
        """Resumed after a restart, not running yet (transfers resume one after another);
        ``fraction``: what was done before."""
        self.bar.setValue(int(1000 * min(1.0, max(0.0, fraction))))
        self.detail.setText(QCoreApplication.translate("Transfers", "Waiting to resume…"))

    @property
    def ended(self) -> bool:
        return self.phase in (phases.DONE, phases.FAILED, phases.CANCELLED)

    def retranslate(self) -> None:
        translate = QCoreApplication.translate
        self.cancel_button.setText(translate("Transfers", "Dismiss") if self.ended
                                   else translate("Transfers", "Cancel"))


class AttachmentBox(QFrame):
    """A file message's file: name and size, Download; while downloading a progress row;
    once the engine verified it, Open and Save as...; a refusal in words."""

    download = Signal()
    open = Signal()
    save = Signal()
    cancel = Signal(str)  # transfer id

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("attachmentBox")
        self.name = QLabel()
        self.name.setObjectName("attachmentName")
        self.name.setTextFormat(Qt.TextFormat.PlainText)
        self.name.setWordWrap(True)
        self.size = QLabel()
        self.size.setObjectName("attachmentSize")
        self.size.setProperty("role", "subtle")
        self.download_button = QPushButton()
        self.download_button.setObjectName("attachmentDownload")
        self.download_button.clicked.connect(self.download)
        self.open_button = QPushButton()
        self.open_button.setObjectName("attachmentOpen")
        self.open_button.clicked.connect(self.open)
        self.save_button = QPushButton()
        self.save_button.setObjectName("attachmentSave")
        self.save_button.clicked.connect(self.save)
        self.status = QLabel()
        self.status.setObjectName("attachmentStatus")
        self.status.setWordWrap(True)
        self.row: TransferRow | None = None
        head = QHBoxLayout()
        head.setSpacing(8)
        head.addWidget(self.name, 1)
        head.addWidget(self.size)
        head.addWidget(self.download_button)
        head.addWidget(self.open_button)
        head.addWidget(self.save_button)
        self._column = QVBoxLayout(self)
        self._column.setContentsMargins(8, 6, 8, 6)
        self._column.setSpacing(4)
        self._column.addLayout(head)
        self._column.addWidget(self.status)
        self.setStyleSheet("QFrame#attachmentBox { border: 1px solid palette(mid);"
                           " border-radius: 6px; }"
                           "QLabel#attachmentName { font-weight: 600; }"
                           "QLabel#attachmentStatus[state=\"bad\"] { color: #b3261e; }")
        self.state = ""
        self.retranslate()
        self.set_available()

    def show_file(self, name: str, size: int) -> None:
        self.name.setText(name)
        self.size.setText(size_text(size))

    def set_available(self) -> None:
        """Not on this workstation yet: Download."""
        self._state("available")

    def start(self, transfer_id: str) -> TransferRow:
        """Downloading: a progress row with Cancel (the view routes progress to it)."""
        self._drop_row()
        self.row = TransferRow(transfer_id)
        self.row.cancel.connect(self.cancel)
        self._column.insertWidget(1, self.row)
        self._state("downloading")
        return self.row

    def set_ready(self) -> None:
        """Downloaded and verified by the engine: Open and Save as..."""
        self._drop_row()
        self._state("ready")
        self.status.setText(QCoreApplication.translate(
            "Transfers", "Verified: signed by the sender's device, intact."))

    def set_failed(self, message: str) -> None:
        """Refused or stopped (``message``: the engine's user-safe words); Download again."""
        self._drop_row()
        self._state("available")
        self.status.setText(message)
        self.status.setProperty("state", "bad")
        self.status.style().unpolish(self.status)
        self.status.style().polish(self.status)
        self.status.show()

    def _drop_row(self) -> None:
        if self.row is not None:
            self._column.removeWidget(self.row)
            self.row.deleteLater()
            self.row = None

    def _state(self, state: str) -> None:
        self.state = state
        self.download_button.setVisible(state == "available")
        self.open_button.setVisible(state == "ready")
        self.save_button.setVisible(state == "ready")
        self.status.setProperty("state", "")
        self.status.setVisible(state == "ready")

    def retranslate(self) -> None:
        translate = QCoreApplication.translate
        self.download_button.setText(translate("Transfers", "Download"))
        self.open_button.setText(translate("Transfers", "Open"))
        self.save_button.setText(translate("Transfers", "Save as…"))
        self.setAccessibleName(translate("Transfers", "Attached file"))


def preview_dialog(parent: QWidget, name: str, mime: str, data: bytes) -> QDialog:
    """*Open*: the verified file shown inside the app, from memory (images and text; other
    types say to use Save as...). PHI-tagged: the lock hides it, screen sharing redacts it."""
    translate = QCoreApplication.translate
    dialog = QDialog(parent)
    dialog.setObjectName("attachmentPreview")
    dialog.setWindowTitle(name)
    mark_phi(dialog)
    column = QVBoxLayout(dialog)
    image = QImage.fromData(data) if data and mime.startswith("image/") else QImage()
    text: str | None = None
    if image.isNull() and data and (mime.startswith("text/") or mime in _TEXT_TYPES):
        text = data.decode("utf-8", "replace")[:MAX_TEXT_PREVIEW]
    if not image.isNull():
        label = QLabel()
        label.setObjectName("previewImage")
        label.setPixmap(QPixmap.fromImage(image))
        area = QScrollArea()
        area.setWidget(label)
        column.addWidget(area)
        dialog.resize(min(image.width() + 40, 1200), min(image.height() + 60, 900))
    elif text is not None:
        edit = QPlainTextEdit(text)
        edit.setObjectName("previewText")
        edit.setReadOnly(True)
        column.addWidget(edit)
        dialog.resize(720, 540)
    else:
        label = QLabel(translate("Transfers", "This type of file cannot be shown here. Use "
                                 "Save as… to open it with another program."))
        label.setObjectName("previewNone")
        label.setWordWrap(True)
        column.addWidget(label)
    close = QPushButton(translate("Transfers", "Close"))
    close.clicked.connect(dialog.close)
    column.addWidget(close, 0, Qt.AlignmentFlag.AlignRight)
    return dialog

"""Verifying a colleague's device by comparing seven emoji (or three numbers).

Both people see this dialog at the same time, ideally side by side or on the phone. It
follows the verification service: an incoming request asks to accept; then both compare; the
device becomes verified only when both said the emoji match. Closing the dialog (Esc) cancels
a verification still running.
"""

from __future__ import annotations

from PySide6.QtCore import QCoreApplication, Qt
from PySide6.QtGui import QFont
from PySide6.QtWidgets import (
    QCheckBox,
    QDialog,
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QStackedWidget,
    QVBoxLayout,
    QWidget,
)

from app.services.verification import Phase, VerificationService, VerificationStatus
from app.ui.asyncbridge import TaskRunner
from app.ui.chat.texts import cancel_text, short_device
from app.ui.i18n import fill
from app.ui.observe import observe

EMOJI_FONT = ("Noto Color Emoji", "Apple Color Emoji", "Segoe UI Emoji")


def _page(*widgets: QWidget, stretch_after: int = 0) -> QWidget:
    page = QWidget()
    column = QVBoxLayout(page)
    column.setContentsMargins(0, 0, 0, 0)
    column.setSpacing(12)
    for i, widget in enumerate(widgets):
        column.addWidget(widget)
        if i == stretch_after - 1:
            column.addStretch(1)
    column.addStretch(1)
    return page


def _wrapping(text: str = "", *, role: str = "") -> QLabel:
    label = QLabel(text)
    label.setWordWrap(True)
    if role:
        label.setProperty("role", role)
    return label


class EmojiTile(QWidget):
    def __init__(self, emoji: str, name: str) -> None:
        super().__init__()
        self.emoji = QLabel(emoji)
        self.emoji.setObjectName("sasEmoji")
        font = QFont()
        font.setFamilies([*EMOJI_FONT, font.family()])
        font.setPointSize(34)
        self.emoji.setFont(font)
        self.emoji.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.name = QLabel(name)
        self.name.setAlignment(Qt.AlignmentFlag.AlignCenter)
        column = QVBoxLayout(self)
        column.setContentsMargins(4, 4, 4, 4)
        column.setSpacing(2)
        column.addWidget(self.emoji)
        column.addWidget(self.name)


class VerificationDialog(QDialog):
    def __init__(self, service: VerificationService, runner: TaskRunner,
                 status: VerificationStatus, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("verificationDialog")
        self.setMinimumWidth(620)
        self._service, self._runner = service, runner
        self.status = status
        self.error = _wrapping(role="error")
        self.error.hide()

        self.heading = QLabel()
        self.heading.setProperty("role", "heading")
        self.heading.setWordWrap(True)
        self.request_text = _wrapping()
        self.waiting_text = _wrapping()
        self.compare_text = _wrapping()
        self.emoji_grid = QGridLayout()
        self.emoji_grid.setSpacing(6)
        emoji_box = QWidget()
        emoji_box.setLayout(self.emoji_grid)
        self.numbers = QLabel()
        self.numbers.setObjectName("sasNumbers")
        self.numbers.setAlignment(Qt.AlignmentFlag.AlignCenter)
        font = self.numbers.font()
        font.setPointSize(26)
        font.setWeight(QFont.Weight.DemiBold)
        self.numbers.setFont(font)
        self.numbers.hide()
        self.use_numbers = QCheckBox()
        self.use_numbers.toggled.connect(self._toggle_numbers)
        self.done_text = _wrapping()
        self.done_text.setProperty("state", "ok")
        self.cancelled_text = _wrapping()

        self.pages = QStackedWidget()
        self.request_page = _page(self.request_text)
        self.waiting_page = _page(self.waiting_text)
        self.compare_page = _page(self.compare_text, emoji_box, self.numbers, self.use_numbers)
        self.done_page = _page(self.done_text)
        self.cancelled_page = _page(self.cancelled_text)
        for page in (self.request_page, self.waiting_page, self.compare_page, self.done_page,
                     self.cancelled_page):
            self.pages.addWidget(page)

        self.accept_button = QPushButton()
        self.accept_button.setObjectName("sasAccept")
        self.accept_button.clicked.connect(self.accept_request)
        self.match_button = QPushButton()
        self.match_button.setObjectName("sasMatch")
        self.match_button.clicked.connect(self.confirm_match)
        self.mismatch_button = QPushButton()
        self.mismatch_button.setObjectName("sasMismatch")
        self.mismatch_button.setAutoDefault(False)
        self.mismatch_button.clicked.connect(self.report_mismatch)
        self.cancel_button = QPushButton()
        self.cancel_button.setObjectName("sasCancel")
        self.cancel_button.setAutoDefault(False)  # Enter never cancels by accident
        self.cancel_button.clicked.connect(self.cancel_verification)
        self.close_button = QPushButton()
        self.close_button.setObjectName("sasClose")
        self.close_button.clicked.connect(self.accept)
        for button in (self.accept_button, self.match_button, self.close_button):
            bold = button.font()  # the default button is bold: size it for that
            bold.setWeight(QFont.Weight.DemiBold)
            button.setFont(bold)
        buttons = QHBoxLayout()
        buttons.addWidget(self.cancel_button)
        buttons.addStretch(1)
        for button in (self.mismatch_button, self.match_button, self.accept_button,
                       self.close_button):
            buttons.addWidget(button)

        column = QVBoxLayout(self)
        column.setContentsMargins(24, 20, 24, 20)
        column.setSpacing(14)
        column.addWidget(self.heading)
        column.addWidget(self.pages, 1)
        column.addWidget(self.error)
        column.addLayout(buttons)
        observe(service.changed, self._changed, self)
        self._shown_emoji: tuple[tuple[str, str], ...] = ()
        self.retranslate()
        self.show_status(status)

    # -- following the service ---------------------------------------------------------------

    def _changed(self, status: VerificationStatus) -> None:
        if status.transaction_id == self.status.transaction_id:
            self.show_status(status)

    def show_status(self, status: VerificationStatus) -> None:
        translate = QCoreApplication.translate
        self.status = status
        name = status.username
        device = short_device(status.device_id)
        self.error.hide()
        buttons = {self.accept_button: False, self.match_button: False,
                   self.mismatch_button: False, self.cancel_button: True,
                   self.close_button: False}
        if status.phase is Phase.REQUESTED:
            self.heading.setText(translate("VerificationDialog", "Verification request"))
            self.request_text.setText(fill(translate(
                "VerificationDialog", "%1 wants to verify your device with their device (%2). "
                "Accept only if you are in touch with %1 now, in person or by phone: you will "
                "compare seven emoji together."), name, device))
            self.pages.setCurrentWidget(self.request_page)
            buttons[self.accept_button] = True
            self.cancel_button.setText(translate("VerificationDialog", "Decline"))
            self.accept_button.setDefault(True)
        elif status.phase in (Phase.WAITING, Phase.CONFIRMED):
            self.heading.setText(fill(translate("VerificationDialog", "Verify %1's device"),
                                      name))
            if status.phase is Phase.WAITING:
                text = fill(translate("VerificationDialog", "Waiting for %1 to accept the "
                                      "request on their device (%2)."), name, device)
            else:
                text = fill(translate("VerificationDialog", "You confirmed. Waiting for %1 to "
                                      "compare and confirm on their side…"), name)
            self.waiting_text.setText(text)
            self.pages.setCurrentWidget(self.waiting_page)
            self.cancel_button.setText(translate("VerificationDialog", "Cancel"))
        elif status.phase is Phase.SHOWING:
            self.heading.setText(fill(translate("VerificationDialog", "Compare with %1"), name))
            self.compare_text.setText(fill(translate(
                "VerificationDialog", "Check with %1 that their device (%2) shows the same "
                "emoji in the same order: read them out to each other."), name, device))
            self._show_codes(status)
            self.pages.setCurrentWidget(self.compare_page)
            buttons[self.match_button] = buttons[self.mismatch_button] = True
            self.cancel_button.setText(translate("VerificationDialog", "Cancel"))
            self.match_button.setDefault(True)
        elif status.phase is Phase.VERIFIED:
            self.heading.setText(translate("VerificationDialog", "Device verified"))
            self.done_text.setText(fill(translate(
                "VerificationDialog", "✓ %1's device (%2) is verified. Messages to it are "
                "end-to-end encrypted to the device you checked."), name, device))
            self.pages.setCurrentWidget(self.done_page)
            buttons[self.cancel_button] = False
            buttons[self.close_button] = True
            self.close_button.setDefault(True)
        else:
            self.heading.setText(translate("VerificationDialog", "Not verified"))
            self.cancelled_text.setText(cancel_text(status.reason, by_peer=status.by_peer,
                                                    name=name))
            self.pages.setCurrentWidget(self.cancelled_page)
            buttons[self.cancel_button] = False
            buttons[self.close_button] = True
            self.close_button.setDefault(True)
        for button, visible in buttons.items():
            button.setVisible(visible)
            button.setEnabled(True)
        self.setWindowTitle(self.heading.text())

    def _show_codes(self, status: VerificationStatus) -> None:
        if status.emoji != self._shown_emoji:
            while self.emoji_grid.count():
                item = self.emoji_grid.takeAt(0)
                if item.widget() is not None:
                    item.widget().deleteLater()
            for i, (emoji, name) in enumerate(status.emoji):
                tile = EmojiTile(emoji, QCoreApplication.translate("SasEmoji", name))
                self.emoji_grid.addWidget(tile, 0, i)
            self._shown_emoji = status.emoji
        if status.decimals is not None:
            self.numbers.setText("   ".join(str(d) for d in status.decimals))

    def emoji_names(self) -> list[str]:
        return [self.emoji_grid.itemAt(i).widget().name.text()
                for i in range(self.emoji_grid.count())]

    def _toggle_numbers(self, on: bool) -> None:
        self.numbers.setVisible(on)
        for i in range(self.emoji_grid.count()):
            self.emoji_grid.itemAt(i).widget().setVisible(not on)

    # -- the user's answers ------------------------------------------------------------------

    def _run(self, coro, *buttons: QPushButton) -> None:  # type: ignore[no-untyped-def]
        for button in buttons:
            button.setEnabled(False)
        self._runner.run_task(coro, owner=self, on_error=self._failed)

    def _failed(self, message: str) -> None:
        self.error.setText(message)
        self.error.show()
        for button in (self.accept_button, self.match_button, self.mismatch_button,
                       self.cancel_button):
            button.setEnabled(True)

    def accept_request(self) -> None:
        self._run(self._service.accept(self.status.transaction_id), self.accept_button)

    def confirm_match(self) -> None:
        self._run(self._service.confirm(self.status.transaction_id), self.match_button,
                  self.mismatch_button)

    def report_mismatch(self) -> None:
        self._run(self._service.mismatch(self.status.transaction_id), self.match_button,
                  self.mismatch_button)

    def cancel_verification(self) -> None:
        if not self.status.finished:
            self._run(self._service.cancel(self.status.transaction_id), self.cancel_button)

    def reject(self) -> None:
        self.cancel_verification()  # Esc or the window's close button: stop, then go
        super().reject()

    def retranslate(self) -> None:
        translate = QCoreApplication.translate
        self.accept_button.setText(translate("VerificationDialog", "Accept"))
        self.match_button.setText(translate("VerificationDialog", "They match"))
        self.mismatch_button.setText(translate("VerificationDialog", "They don't match"))
        self.close_button.setText(translate("VerificationDialog", "Close"))
        self.use_numbers.setText(translate("VerificationDialog",
                                           "Compare numbers instead (no emoji on their screen)"))
        if hasattr(self, "status"):
            self.show_status(self.status)

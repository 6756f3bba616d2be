"""The sign-in screen: user name, password and authenticator (TOTP) code.

The sign-in itself is injected (``sign_in(username, password, totp)``, a coroutine that raises
``SafeConsultError`` with a user message); this view only collects the three secrets, checks
they are filled in, runs the call through the :class:`TaskRunner` and shows its outcome.
Secrets are dropped from the fields as soon as they are sent: a failed attempt needs a fresh
code anyway, and a password left in a widget is a password in memory for nothing.

Where policy allows an unlock PIN, the sign-in returns an :class:`app.core.pin.PinOffer`;
the view then opens the optional set-PIN step (:class:`app.ui.lock_screen.SetPinDialog`, a
window-modal dialog over the workspace the window shows by then).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from PySide6.QtCore import QEvent, QRegularExpression, Qt, Signal
from PySide6.QtGui import QFontDatabase, QRegularExpressionValidator, QShowEvent
from PySide6.QtWidgets import (
    QFormLayout,
    QFrame,
    QLabel,
    QLineEdit,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from app.ui.asyncbridge import TaskRunner
from app.ui.form_error import form_error_label, show_form_error
from app.ui.i18n import fill

if TYPE_CHECKING:
    from app.ui.lock_screen import SetPinDialog

# Resolves to None, or to a PinOffer when policy lets the user set an unlock PIN.
SignIn = Callable[[str, str, str], Awaitable[object]]

TOTP_DIGITS = 6


class LoginView(QWidget):
    signedIn = Signal()

    def __init__(
        self, sign_in: SignIn, runner: TaskRunner, server_url: str,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self._sign_in = sign_in
        self._runner = runner
        self._server_url = server_url
        self._busy = False
        self._ready = True  # False until the device is prepared (an interrupted wipe finished)
        self.pin_dialog: SetPinDialog | None = None  # the set-PIN step, while open

        self.heading = QLabel()
        self.heading.setProperty("role", "heading")
        self.intro = QLabel()
        self.intro.setWordWrap(True)
        self.intro.setProperty("role", "subtle")

        self.username = QLineEdit()
        self.username.setObjectName("username")
        self.username.setInputMethodHints(Qt.InputMethodHint.ImhNoPredictiveText
                                          | Qt.InputMethodHint.ImhNoAutoUppercase)
        self.password = QLineEdit()
        self.password.setObjectName("password")
        self.password.setEchoMode(QLineEdit.EchoMode.Password)  # also disables copy/cut
        self.password.setInputMethodHints(Qt.InputMethodHint.ImhSensitiveData
                                          | Qt.InputMethodHint.ImhNoPredictiveText)
        self.totp = QLineEdit()
        self.totp.setObjectName("totp")
        # Apps show the code as "123 456"; accept the space, strip it on submit.
        self.totp.setValidator(QRegularExpressionValidator(
            QRegularExpression(r"[0-9]{0,3} ?[0-9]{0,3}"), self.totp))
        self.totp.setInputMethodHints(Qt.InputMethodHint.ImhDigitsOnly
                                      | Qt.InputMethodHint.ImhSensitiveData)

        self.username_label = QLabel()
        self.username_label.setBuddy(self.username)
        self.password_label = QLabel()
        self.password_label.setBuddy(self.password)
        self.totp_label = QLabel()
        self.totp_label.setBuddy(self.totp)

        self.error = form_error_label("loginError")

        self.submit = QPushButton()
        self.submit.setObjectName("signIn")
        self.submit.setDefault(True)
        self.submit.setAutoDefault(True)
        self.submit.clicked.connect(self._submit)
        for field in (self.username, self.password, self.totp):
            field.returnPressed.connect(self._submit)

        # While IT has to approve this workstation: the key fingerprint to read out to them.
        self.fingerprint_intro = QLabel()
        self.fingerprint_intro.setWordWrap(True)
        self.fingerprint = QLabel()
        self.fingerprint.setObjectName("deviceFingerprint")
        self.fingerprint.setWordWrap(True)
        self.fingerprint.setTextInteractionFlags(
            Qt.TextInteractionFlag.TextSelectableByMouse
            | Qt.TextInteractionFlag.TextSelectableByKeyboard)
        mono = QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont)
        mono.setPointSize(self.font().pointSize() + 2)
        self.fingerprint.setFont(mono)
        self.set_fingerprint("")

        # Start-up news about this workstation (e.g. an interrupted wipe was completed).
        self.notice = QLabel()
        self.notice.setObjectName("deviceNotice")
        self.notice.setWordWrap(True)
        self.notice.hide()

        self.server = QLabel()
        self.server.setObjectName("serverUrl")
        self.server.setProperty("role", "subtle")
        self.server.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)

        form = QFormLayout()
        form.setSpacing(12)
        form.setRowWrapPolicy(QFormLayout.RowWrapPolicy.WrapAllRows)
        form.addRow(self.username_label, self.username)
        form.addRow(self.password_label, self.password)
        form.addRow(self.totp_label, self.totp)

        card = QFrame()
        card.setObjectName("loginCard")
        card.setFixedWidth(460)
        card_layout = QVBoxLayout(card)
        card_layout.setSpacing(16)
        card_layout.addWidget(self.heading)
        card_layout.addWidget(self.notice)
        card_layout.addWidget(self.intro)
        card_layout.addLayout(form)
        card_layout.addWidget(self.error)
        card_layout.addWidget(self.fingerprint_intro)
        card_layout.addWidget(self.fingerprint)
        card_layout.addWidget(self.submit)
        card_layout.addSpacing(8)
        card_layout.addWidget(self.server)

        outer = QVBoxLayout(self)
        outer.addStretch(1)
        outer.addWidget(card, 0, Qt.AlignmentFlag.AlignHCenter)
        outer.addStretch(2)

        self.setTabOrder(self.username, self.password)
        self.setTabOrder(self.password, self.totp)
        self.setTabOrder(self.totp, self.submit)
        self.retranslate()

    # -- texts -------------------------------------------------------------------------------

    def retranslate(self) -> None:
        self.heading.setText(self.tr("Sign in to SafeConsult"))
        self.intro.setText(self.tr(
            "Use your hospital user name and password, and the 6‑digit code from your "
            "authenticator app."))
        self.username_label.setText(self.tr("&User name"))
        self.password_label.setText(self.tr("&Password"))
        self.totp_label.setText(self.tr("Authenticator &code"))
        self.totp.setPlaceholderText(self.tr("6 digits"))
        self.username.setAccessibleName(self.tr("User name"))
        self.password.setAccessibleName(self.tr("Password"))
        self.totp.setAccessibleName(self.tr("Authenticator code"))
        if not self._ready:
            self.submit.setText(self.tr("Preparing this workstation…"))
        elif self._busy:
            self.submit.setText(self.tr("Signing in…"))
        else:
            self.submit.setText(self.tr("Sign in"))
        self.server.setText(fill(self.tr("Server: %1"), self._server_url))
        self.fingerprint_intro.setText(self.tr(
            "This workstation is waiting for IT's approval. Read this device fingerprint to IT:"))

    def showEvent(self, event: QShowEvent) -> None:
        # Shown again: that session ended, and its set-PIN step with it.
        self._close_pin_dialog()
        super().showEvent(event)

    def changeEvent(self, event: QEvent) -> None:
        if event.type() == QEvent.Type.LanguageChange:
            self.retranslate()
        super().changeEvent(event)

    # -- behaviour ---------------------------------------------------------------------------

    def show_error(self, message: str) -> None:
        show_form_error(self.error, message)

    def set_fingerprint(self, fingerprint: str) -> None:
        """Show the device key fingerprint IT needs to approve this workstation ("" hides it)."""
        self.fingerprint.setText(fingerprint)
        for label in (self.fingerprint_intro, self.fingerprint):
            label.setVisible(bool(fingerprint))

    def _missing_field(self) -> tuple[str, QLineEdit] | None:
        if not self.username.text().strip():
            return self.tr("Enter your user name."), self.username
        if not self.password.text():
            return self.tr("Enter your password."), self.password
        if len(self.totp.text().replace(" ", "")) != TOTP_DIGITS:
            return self.tr("Enter the 6-digit code from your authenticator app."), self.totp
        return None

    def _submit(self) -> None:
        if self._busy or not self._ready:
            return
        missing = self._missing_field()
        if missing is not None:
            message, field = missing
            self.show_error(message)
            field.setFocus()
            return
        username = self.username.text().strip()
        password = self.password.text()
        code = self.totp.text().replace(" ", "")
        self.password.clear()
        self.totp.clear()
        self.show_error("")
        self._set_busy(True)
        self._runner.run_task(
            self._sign_in(username, password, code), owner=self,
            on_result=self._succeeded, on_error=self._failed,
        )

    def _succeeded(self, result: object) -> None:
        self._set_busy(False)
        self.signedIn.emit()
        if result is not None:
            self._offer_pin(result)

    def _offer_pin(self, offer: object) -> None:
        # Loaded only here: the sign-in screen is part of the first frame.
        from app.core.pin import PinOffer
        from app.ui.lock_screen import SetPinDialog

        if not isinstance(offer, PinOffer):
            return
        self._close_pin_dialog()
        dialog = SetPinDialog(offer, self._runner, self.window())
        dialog.setWindowModality(Qt.WindowModality.WindowModal)
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        dialog.finished.connect(lambda _code, d=dialog: self._pin_dialog_closed(d))
        self.pin_dialog = dialog
        dialog.open()

    def _pin_dialog_closed(self, dialog: SetPinDialog) -> None:
        if self.pin_dialog is dialog:
            self.pin_dialog = None

    def _close_pin_dialog(self) -> None:
        dialog, self.pin_dialog = self.pin_dialog, None
        if dialog is not None:
            dialog.reject()

    def _failed(self, message: str) -> None:
        self._set_busy(False)
        self.show_error(message)
        self.password.setFocus()

    def reset(self) -> None:
        """An empty form: after *Switch user* (and every sign-out on a kiosk) nothing of the
        previous person stays, the user name included."""
        for field in (self.username, self.password, self.totp):
            field.clear()
        self.show_error("")
        self.set_fingerprint("")
        self._close_pin_dialog()  # the set-PIN step belonged to the session that ended

    def set_ready(self, ready: bool, notice: str = "") -> None:
        """Allow signing in only once the workstation is prepared (see app/main.py)."""
        self._ready = ready
        self.notice.setText(notice)
        self.notice.setVisible(bool(notice))
        self._set_busy(self._busy)

    def _set_busy(self, busy: bool) -> None:
        self._busy = busy
        for widget in (self.username, self.password, self.totp, self.submit):
            widget.setEnabled(self._ready and not busy)
        self.retranslate()

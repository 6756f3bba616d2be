"""The lock screen, the set-PIN step and the warning before the lock.

:class:`LockScreen` replaces the workspace while the session is locked. It shows no patient
data: the signed-in clinician's own user name, "Locked", a password (or PIN) field, *Unlock*
and *Sign out*. The unlock is injected (``unlock(password)``: None when unlocked, else the
attempts left; the last failure ends the session and raises) and runs through the TaskRunner.

PIN (policy ``allow_pin_unlock``): when the injected ``unlock`` also offers
:class:`PinUnlock` and a PIN may unlock this lock, the screen asks for the PIN first, with
*Use password instead* (and back). A wrong PIN counts like a wrong password; after too many
wrong PINs the session stops offering the PIN and the screen switches to the password for
good. :class:`SetPinDialog` is the optional step after sign-in that sets the PIN (shown by
the sign-in view when the sign-in returns an :class:`app.core.pin.PinOffer`).

:class:`LockWarning` is the non-modal banner shown in the last seconds before an idle lock
("Locking in N s -- move the mouse to stay signed in"); any input dismisses it (the lock
controller resets the machine, which clears ``AppState.lock_seconds_left``).

Calls (not built yet): while locked, a running consult call keeps its **audio** -- hanging
up on a colleague mid-sentence because the screen locked would be unsafe -- but its
**video** (both the remote picture and the self view) is hidden like every other PHI widget,
because a patient or an image may be on camera. The call view must tag its video widgets
with ``app.ui.phi.mark_phi`` and must not stop the audio track on lock; the lock screen
may show "Call in progress" with a hang-up button, never the video.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Protocol, runtime_checkable

from PySide6.QtCore import QEvent, QRegularExpression, Qt, Signal
from PySide6.QtGui import QRegularExpressionValidator
from PySide6.QtWidgets import (
    QDialog,
    QFrame,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from app.core.pin import PIN_MAX_FAILURES, PIN_MAX_LENGTH, PinOffer, PinProblem, PinRefused
from app.ui.asyncbridge import TaskRunner
from app.ui.form_error import form_error_label, show_form_error
from app.ui.i18n import fill

Unlock = Callable[[str], Awaitable["int | None"]]

PASSWORD, PIN = "password", "pin"


@runtime_checkable
class PinUnlock(Protocol):
    """What the lock screen needs for the PIN, besides ``unlock(password)``
    (app.ui.session_link.SessionUnlock offers both)."""

    def pin_offered(self) -> bool:
        """A PIN may unlock the current lock."""
        ...

    def unlock_pin(self, pin: str) -> Awaitable[int | None]:
        """None when unlocked, else the attempts left before the session ends."""
        ...


def pin_field(object_name: str) -> QLineEdit:
    """A masked field that takes 0-12 ASCII digits, in large type, with no prediction."""
    field = QLineEdit()
    field.setObjectName(object_name)
    field.setEchoMode(QLineEdit.EchoMode.Password)
    field.setValidator(QRegularExpressionValidator(
        QRegularExpression(f"[0-9]{{0,{PIN_MAX_LENGTH}}}"), field))
    field.setMaxLength(PIN_MAX_LENGTH)
    field.setInputMethodHints(Qt.InputMethodHint.ImhDigitsOnly
                              | Qt.InputMethodHint.ImhSensitiveData
                              | Qt.InputMethodHint.ImhNoPredictiveText)
    field.setAlignment(Qt.AlignmentFlag.AlignCenter)
    font = field.font()
    font.setPointSize(font.pointSize() + 8)
    font.setLetterSpacing(font.SpacingType.AbsoluteSpacing, 4)
    field.setFont(font)
    return field


def link_button(object_name: str) -> QPushButton:
    """A flat, link-like button (switches between PIN and password)."""
    button = QPushButton()
    button.setObjectName(object_name)
    button.setFlat(True)
    button.setAutoDefault(False)
    button.setCursor(Qt.CursorShape.PointingHandCursor)
    button.setStyleSheet(
        f"QPushButton#{object_name} {{ color: palette(link); border: none; padding: 2px 0;"
        " min-height: 0; text-align: left; text-decoration: underline; }")
    return button


class LockScreen(QWidget):
    unlocked = Signal()
    # A user-safe message after a failed unlock (the window shows the final one on the
    # sign-in screen, since that failure signs out).
    unlockFailed = Signal(str)
    signOutRequested = Signal()

    def __init__(self, unlock: Unlock | None, runner: TaskRunner,
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("lockScreen")
        self._unlock = unlock
        self._pin: PinUnlock | None = unlock if isinstance(unlock, PinUnlock) else None
        self._runner = runner
        self._busy = False
        self._username = ""
        self.mode = PASSWORD

        self.heading = QLabel()
        self.heading.setObjectName("lockHeading")
        self.heading.setProperty("role", "heading")
        self.user = QLabel()
        self.user.setObjectName("lockedUser")
        self.user.setProperty("role", "subtle")
        self.intro = QLabel()
        self.intro.setWordWrap(True)
        self.password_label = QLabel()
        self.password = QLineEdit()
        self.password.setObjectName("unlockPassword")
        self.password.setEchoMode(QLineEdit.EchoMode.Password)
        self.password.setInputMethodHints(Qt.InputMethodHint.ImhSensitiveData
                                          | Qt.InputMethodHint.ImhNoPredictiveText)
        self.password_label.setBuddy(self.password)
        self.password.returnPressed.connect(self._submit)
        self.pin_label = QLabel()
        self.pin = pin_field("unlockPin")
        self.pin_label.setBuddy(self.pin)
        self.pin.returnPressed.connect(self._submit)
        self.switch_button = link_button("unlockSwitch")
        self.switch_button.clicked.connect(self._switch_mode)
        self.error = form_error_label("unlockError")
        self.unlock_button = QPushButton()
        self.unlock_button.setObjectName("unlock")
        self.unlock_button.setDefault(True)
        self.unlock_button.setMinimumWidth(130)  # bold default-button text needs the room
        self.unlock_button.clicked.connect(self._submit)
        self.sign_out_button = QPushButton()
        self.sign_out_button.setObjectName("lockSignOut")
        self.sign_out_button.clicked.connect(self.signOutRequested)

        buttons = QHBoxLayout()
        buttons.addWidget(self.sign_out_button)
        buttons.addStretch(1)
        buttons.addWidget(self.unlock_button)
        card = QFrame()
        card.setObjectName("loginCard")
        card.setFixedWidth(420)
        column = QVBoxLayout(card)
        column.setSpacing(14)
        column.addWidget(self.heading)
        column.addWidget(self.user)
        column.addWidget(self.intro)
        column.addWidget(self.password_label)
        column.addWidget(self.password)
        column.addWidget(self.pin_label)
        column.addWidget(self.pin)
        column.addWidget(self.switch_button, 0, Qt.AlignmentFlag.AlignLeft)
        column.addWidget(self.error)
        column.addLayout(buttons)
        # Centred by stretches, not by an alignment flag: an aligned item gets its size hint,
        # which ignores the word-wrapped labels' height for width (the buttons were clipped).
        row = QHBoxLayout()
        row.addStretch(1)
        row.addWidget(card)
        row.addStretch(1)
        outer = QVBoxLayout(self)
        outer.addStretch(1)
        outer.addLayout(row)
        outer.addStretch(2)
        self._show_mode()
        self.retranslate()

    def prepare(self, username: str) -> None:
        """A fresh lock: no old text; the PIN when one may unlock this lock, else the
        password; focus on the field."""
        self._username = username
        self.password.clear()
        self.pin.clear()
        self.show_error("")
        self._set_busy(False)
        self.set_mode(PIN if self._pin_offered() else PASSWORD)

    def _pin_offered(self) -> bool:
        return self._pin is not None and self._pin.pin_offered()

    def set_mode(self, mode: str) -> None:
        self.mode = mode if mode == PASSWORD or self._pin_offered() else PASSWORD
        self._show_mode()
        self.retranslate()
        self.focus_field()

    def focus_field(self) -> None:
        (self.pin if self.mode == PIN else self.password).setFocus()

    def _show_mode(self) -> None:
        pin = self.mode == PIN
        for widget in (self.pin_label, self.pin):
            widget.setVisible(pin)
        for widget in (self.password_label, self.password):
            widget.setVisible(not pin)
        # From the password back to the PIN only while the session still offers it.
        self.switch_button.setVisible(pin or self._pin_offered())

    def _switch_mode(self) -> None:
        self.show_error("")
        self.password.clear()
        self.pin.clear()
        self.set_mode(PASSWORD if self.mode == PIN else PIN)

    def retranslate(self) -> None:
        self.heading.setText(self.tr("Locked"))
        self.user.setText(fill(self.tr("Signed in as %1"), self._username))
        if self.mode == PIN:
            self.intro.setText(self.tr(
                "SafeConsult locked itself to protect patient data. Enter your PIN to go on "
                "where you left off."))
            self.switch_button.setText(self.tr("Use password instead"))
        else:
            self.intro.setText(self.tr(
                "SafeConsult locked itself to protect patient data. Enter your password to go "
                "on where you left off."))
            self.switch_button.setText(self.tr("Use PIN instead"))
        self.password_label.setText(self.tr("&Password"))
        self.password.setAccessibleName(self.tr("Password"))
        self.pin_label.setText(self.tr("P&IN"))
        self.pin.setAccessibleName(self.tr("PIN"))
        self.unlock_button.setText(self.tr("Checking…") if self._busy else self.tr("Unlock"))
        self.sign_out_button.setText(self.tr("Sign out"))

    def changeEvent(self, event: QEvent) -> None:
        if event.type() == QEvent.Type.LanguageChange:
            self.retranslate()
        super().changeEvent(event)

    def show_error(self, message: str) -> None:
        show_form_error(self.error, message)

    def _submit(self) -> None:
        if self._busy or self._unlock is None:
            return
        if self.mode == PIN and self._pin is not None:
            pin = self.pin.text()
            if not pin:
                self.show_error(self.tr("Enter your PIN."))
                return
            self.pin.clear()
            self._set_busy(True)
            self._runner.run_task(self._pin.unlock_pin(pin), owner=self,
                                  on_result=self._pin_result, on_error=self._failed)
            return
        password = self.password.text()
        if not password:
            self.show_error(self.tr("Enter your password."))
            return
        self.password.clear()
        self._set_busy(True)
        self._runner.run_task(self._unlock(password), owner=self,
                              on_result=self._result, on_error=self._failed)

    def _result(self, attempts_left: int | None) -> None:
        self._set_busy(False)
        if attempts_left is None:
            self._unlocked()
            return
        self._refused(fill(self.tr("The password is not correct. Attempts left before you "
                                   "are signed out: %1"), str(attempts_left)))

    def _pin_result(self, attempts_left: int | None) -> None:
        self._set_busy(False)
        if attempts_left is None:
            self._unlocked()
            return
        if self._pin_offered():
            message = fill(self.tr("The PIN is not correct. Attempts left before you are "
                                   "signed out: %1"), str(attempts_left))
        else:
            # Too many wrong PINs (or a lock that needs the password): password only now.
            self.set_mode(PASSWORD)
            message = fill(self.tr("The PIN cannot be used any more: enter your password. "
                                   "Attempts left before you are signed out: %1"),
                           str(attempts_left))
        self._refused(message)

    def _unlocked(self) -> None:
        self.show_error("")
        self.unlocked.emit()

    def _refused(self, message: str) -> None:
        self.show_error(message)
        self.focus_field()
        self.unlockFailed.emit(message)

    def _failed(self, message: str) -> None:
        self._set_busy(False)
        self.show_error(message)
        self.unlockFailed.emit(message)

    def _set_busy(self, busy: bool) -> None:
        self._busy = busy
        for widget in (self.password, self.pin, self.unlock_button, self.switch_button):
            widget.setEnabled(not busy)
        self.retranslate()


class SetPinDialog(QDialog):
    """The optional step after sign-in: set a PIN for unlocking (policy ``allow_pin_unlock``).

    Two masked digit fields (the PIN and the PIN again), *Not now* and *Set PIN*. The
    session checks the PIN (length, trivial PINs) and keeps only its memory-hard verifier;
    this dialog shows a translated sentence per refusal code and drops the digits from its
    fields as soon as they are sent.
    """

    pinSet = Signal()

    def __init__(self, offer: PinOffer, runner: TaskRunner,
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("setPinDialog")
        self._offer = offer
        self._runner = runner
        self._busy = False
        self.heading = QLabel()
        self.heading.setProperty("role", "heading")
        self.intro = QLabel()
        self.intro.setWordWrap(True)
        self.pin_label = QLabel()
        self.pin = pin_field("newPin")
        self.pin_label.setBuddy(self.pin)
        self.repeat_label = QLabel()
        self.repeat = pin_field("repeatPin")
        self.repeat_label.setBuddy(self.repeat)
        self.note = QLabel()
        self.note.setWordWrap(True)
        self.note.setProperty("role", "subtle")
        self.error = form_error_label("setPinError")
        self.skip_button = QPushButton()
        self.skip_button.setObjectName("skipPin")
        self.skip_button.setAutoDefault(False)
        self.skip_button.clicked.connect(self.reject)
        self.set_button = QPushButton()
        self.set_button.setObjectName("setPin")
        self.set_button.setDefault(True)
        self.set_button.setMinimumWidth(130)
        self.set_button.clicked.connect(self._submit)
        self.pin.returnPressed.connect(self.repeat.setFocus)
        self.repeat.returnPressed.connect(self._submit)

        buttons = QHBoxLayout()
        buttons.addWidget(self.skip_button)
        buttons.addStretch(1)
        buttons.addWidget(self.set_button)
        column = QVBoxLayout(self)
        column.setContentsMargins(28, 24, 28, 24)
        column.setSpacing(12)
        column.addWidget(self.heading)
        column.addWidget(self.intro)
        column.addSpacing(4)
        column.addWidget(self.pin_label)
        column.addWidget(self.pin)
        column.addWidget(self.repeat_label)
        column.addWidget(self.repeat)
        column.addWidget(self.error)
        column.addWidget(self.note)
        column.addSpacing(4)
        column.addLayout(buttons)
        self.setFixedWidth(440)
        self.retranslate()
        self.pin.setFocus()

    def retranslate(self) -> None:
        self.setWindowTitle(self.tr("Unlock PIN"))
        self.heading.setText(self.tr("Set an unlock PIN?"))
        self.intro.setText(fill(self.tr(
            "While you stay signed in, a PIN of at least %1 digits can unlock SafeConsult "
            "instead of your password."), str(self._offer.min_length)))
        self.pin_label.setText(self.tr("New &PIN"))
        self.pin.setAccessibleName(self.tr("New PIN"))
        self.repeat_label.setText(self.tr("&Repeat the PIN"))
        self.repeat.setAccessibleName(self.tr("Repeat the PIN"))
        self.note.setText(fill(self.tr(
            "The PIN is forgotten when you sign out. After %1 wrong PINs only your password "
            "unlocks. Avoid repeated digits, runs such as 123456 and your card's PIN."),
            str(PIN_MAX_FAILURES)))
        self.skip_button.setText(self.tr("Not now"))
        self.set_button.setText(self.tr("Setting…") if self._busy else self.tr("Set PIN"))

    def changeEvent(self, event: QEvent) -> None:
        if event.type() == QEvent.Type.LanguageChange:
            self.retranslate()
        super().changeEvent(event)

    def show_error(self, message: str) -> None:
        show_form_error(self.error, message)
        # Grow (or shrink) with the wrapped error line instead of clipping it.
        self.adjustSize()

    def _submit(self) -> None:
        if self._busy:
            return
        pin, again = self.pin.text(), self.repeat.text()
        if not pin:
            self.show_error(self.tr("Enter a PIN."))
            self.pin.setFocus()
            return
        if pin != again:
            self.show_error(self.tr("The two PINs are not the same. Enter them again."))
            self.pin.clear()
            self.repeat.clear()
            self.pin.setFocus()
            return
        self.pin.clear()
        self.repeat.clear()
        self._set_busy(True)
        self._runner.run_task(self._set(pin), owner=self, on_result=self._result,
                              on_error=self._failed)

    async def _set(self, pin: str) -> str:
        """"" when set, else the refusal code."""
        try:
            await self._offer.set_pin(pin)
        except PinRefused as exc:
            return exc.code
        return ""

    def _result(self, code: str) -> None:
        self._set_busy(False)
        if not code:
            self.show_error("")
            self.pinSet.emit()
            self.accept()
            return
        self.show_error(self.refusal_text(code))
        self.pin.setFocus()

    def refusal_text(self, code: str) -> str:
        if code == PinProblem.TOO_SHORT:
            return fill(self.tr("Use at least %1 digits."), str(self._offer.min_length))
        if code == PinProblem.TOO_LONG:
            return fill(self.tr("Use at most %1 digits."), str(PIN_MAX_LENGTH))
        if code == PinProblem.NOT_DIGITS:
            return self.tr("Use digits only.")
        if code == PinProblem.TRIVIAL:
            return self.tr("This PIN is too easy to guess. Avoid repeated digits and runs "
                           "such as 123456.")
        return self.tr("A PIN cannot be set now. Your password still unlocks SafeConsult.")

    def _failed(self, message: str) -> None:
        self._set_busy(False)
        self.show_error(message)

    def _set_busy(self, busy: bool) -> None:
        self._busy = busy
        for widget in (self.pin, self.repeat, self.set_button, self.skip_button):
            widget.setEnabled(not busy)
        self.retranslate()


class LockWarning(QFrame):
    """Non-modal: it never takes the focus or blocks the work under it."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("lockWarning")
        self.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.label = QLabel()
        self.label.setObjectName("lockWarningText")
        self.label.setAlignment(Qt.AlignmentFlag.AlignCenter)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(16, 8, 16, 8)
        layout.addWidget(self.label)
        self._seconds: int | None = None
        self.hide()

    def show_seconds(self, seconds: int | None) -> None:
        self._seconds = seconds
        if seconds is None:
            self.hide()
            return
        self.retranslate()
        self.show()

    def retranslate(self) -> None:
        if self._seconds is not None:
            text = fill(self.tr("Locking in %1 s – move the mouse to stay signed in"),
                        str(self._seconds))
            self.label.setText(text)
            self.setAccessibleName(text)

    def changeEvent(self, event: QEvent) -> None:
        if event.type() == QEvent.Type.LanguageChange:
            self.retranslate()
        super().changeEvent(event)

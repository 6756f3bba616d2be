"""The lock screen and the warning before it.

:class:`LockScreen` replaces the workspace while the session is locked. It shows no patient
data: the signed-in clinician's own user name, "Locked", a password field, *Unlock* and
*Sign out*. The unlock is injected (``unlock(password)``: None when unlocked, else the attempts
left; the last failure ends the session and raises) and runs through the TaskRunner.

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

from PySide6.QtCore import QEvent, Qt, Signal
from PySide6.QtWidgets import (
    QFrame,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from app.ui.asyncbridge import TaskRunner
from app.ui.form_error import show_form_error
from app.ui.i18n import fill

Unlock = Callable[[str], Awaitable["int | None"]]


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
        self._runner = runner
        self._busy = False
        self._username = ""

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
        self.error = QLabel()
        self.error.setObjectName("unlockError")
        self.error.setProperty("role", "error")
        self.error.setWordWrap(True)
        self.error.hide()
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
        self.retranslate()

    def prepare(self, username: str) -> None:
        """A fresh lock: no old text, focus on the password."""
        self._username = username
        self.password.clear()
        self.show_error("")
        self._set_busy(False)
        self.retranslate()
        self.password.setFocus()

    def retranslate(self) -> None:
        self.heading.setText(self.tr("Locked"))
        self.user.setText(fill(self.tr("Signed in as %1"), self._username))
        self.intro.setText(self.tr(
            "SafeConsult locked itself to protect patient data. Enter your password to go "
            "on where you left off."))
        self.password_label.setText(self.tr("&Password"))
        self.password.setAccessibleName(self.tr("Password"))
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
            self.show_error("")
            self.unlocked.emit()
            return
        message = fill(self.tr("The password is not correct. Attempts left before you are "
                               "signed out: %1"), str(attempts_left))
        self.show_error(message)
        self.password.setFocus()
        self.unlockFailed.emit(message)

    def _failed(self, message: str) -> None:
        self._set_busy(False)
        self.show_error(message)
        self.unlockFailed.emit(message)

    def _set_busy(self, busy: bool) -> None:
        self._busy = busy
        self.password.setEnabled(not busy)
        self.unlock_button.setEnabled(not busy)
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

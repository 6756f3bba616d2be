"""The waiting room in the GUI (docs/calls.md, "Waiting room and invitations").

* Host: :class:`WaitingRoomPanel` in the call window lists who waits, each with *Admit* and
  *Deny*; :class:`InviteButton` rings another member of the consult into the running call.
* Joiner: :class:`JoinWaitDialog` says that the host has been asked, and then plainly what
  happened (let in: the call window opens; turned away; the call ended).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QCoreApplication, Qt, Signal
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QHBoxLayout,
    QLabel,
    QMenu,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from app.ui.i18n import fill


def join_state_text(state: str, host: str) -> str:
    """What the joiner is told for a ``JoinRequest`` state."""
    translate = QCoreApplication.translate
    return {
        "waiting": fill(translate("CallView", "Waiting for %1 to let you in…"), host),
        "admitted": translate("CallView", "You were let in."),
        "denied": fill(translate("CallView", "%1 did not let you into this call."), host),
        "ended": translate("CallView", "This call has ended."),
        "cancelled": translate("CallView", "You stopped waiting."),
        "failed": translate("CallView", "Joining failed. Try again."),
    }.get(state, "")


class WaitingRoomPanel(QWidget):
    """Host side: one row per waiting device -- its name, *Admit*, *Deny*. Hidden when empty."""

    admit = Signal(object)  # Party
    deny = Signal(object)  # Party

    def __init__(self, name_of: Callable[[str], str], parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("callWaitingRoom")
        self.name_of = name_of
        self.title = QLabel(self)
        self.title.setObjectName("callWaitingTitle")
        self.title.setProperty("role", "heading")
        self.rows_box = QVBoxLayout()
        self.rows_box.setContentsMargins(0, 0, 0, 0)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 4, 0, 4)
        layout.addWidget(self.title)
        layout.addLayout(self.rows_box)
        self.rows: dict[Any, tuple[QWidget, QPushButton, QPushButton]] = {}
        self.hide()

    def set_waiting(self, parties: list[Any]) -> None:
        translate = QCoreApplication.translate
        for party in [p for p in self.rows if p not in parties]:
            row = self.rows.pop(party)[0]
            row.setParent(None)
            row.deleteLater()
        for party in parties:
            if party in self.rows:
                continue
            row = QWidget(self)
            line = QHBoxLayout(row)
            line.setContentsMargins(0, 0, 0, 0)
            name = QLabel(fill(translate("CallView", "%1 is waiting to join"),
                               self.name_of(party.user_id)), row)
            admit = QPushButton(translate("CallView", "Admit"), row)
            admit.setObjectName("callAdmit")
            deny = QPushButton(translate("CallView", "Deny"), row)
            deny.setObjectName("callDeny")
            admit.clicked.connect(lambda _c=False, p=party: self.admit.emit(p))
            deny.clicked.connect(lambda _c=False, p=party: self.deny.emit(p))
            line.addWidget(name, 1)
            line.addWidget(admit)
            line.addWidget(deny)
            self.rows_box.addWidget(row)
            self.rows[party] = (row, admit, deny)
        self.title.setText(fill(translate("CallView", "Waiting room (%1)"), str(len(parties))))
        self.setVisible(bool(parties))


class InviteButton(QPushButton):
    """Host side: *Invite…* lists the consult's other members who are not in the call."""

    invite = Signal(str)  # user id

    def __init__(self, candidates: Callable[[], list[tuple[str, str]]],
                 parent: QWidget | None = None) -> None:
        super().__init__(QCoreApplication.translate("CallView", "Invite…"), parent)
        self.setObjectName("callInvite")
        self.candidates = candidates  # () -> [(user id, name)]
        self.menu_ = QMenu(self)
        self.menu_.aboutToShow.connect(self.fill_menu)
        self.setMenu(self.menu_)

    def fill_menu(self) -> None:
        self.menu_.clear()
        people = self.candidates()
        if not people:
            empty = self.menu_.addAction(QCoreApplication.translate(
                "CallView", "Everyone in this consult is in the call"))
            empty.setEnabled(False)
        for user_id, name in people:
            action = self.menu_.addAction(name)
            action.triggered.connect(lambda _c=False, u=user_id: self.invite.emit(u))


class JoinWaitDialog(QDialog):
    """Joiner side: "Waiting for <host> to let you in…" with *Stop waiting*; then the outcome
    with *Close* (turned away, ended) -- or it closes itself when let in."""

    cancel_requested = Signal()

    def __init__(self, host_name: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        translate = QCoreApplication.translate
        self.setObjectName("callJoinWait")
        self.setWindowTitle(translate("CallView", "Join video consult"))
        self.host_name = host_name
        self.state = "waiting"
        self.message = QLabel(self)
        self.message.setObjectName("callJoinMessage")
        self.message.setWordWrap(True)
        buttons = QDialogButtonBox(self)
        # One button: "Stop waiting" while waiting, "Close" once there is an outcome.
        self.button = buttons.addButton(translate("CallView", "Stop waiting"),
                                        QDialogButtonBox.ButtonRole.RejectRole)
        self.button.setObjectName("callJoinButton")
        width = max(QPushButton(translate("CallView", text)).sizeHint().width()
                    for text in ("Stop waiting", "Close"))
        self.button.setMinimumWidth(width + 28)  # room for the bold default button's text
        self.button.clicked.connect(self._clicked)
        layout = QVBoxLayout(self)
        layout.addWidget(self.message)
        layout.addWidget(buttons)
        self.setMinimumWidth(400)
        self.setWindowFlag(Qt.WindowType.WindowStaysOnTopHint)
        self.set_state("waiting")

    def _clicked(self) -> None:
        if self.state == "waiting":
            self.cancel_requested.emit()
            self.reject()
        else:
            self.accept()

    def set_state(self, state: str) -> None:
        translate = QCoreApplication.translate
        self.state = state
        self.message.setText(join_state_text(state, self.host_name))
        self.message.setProperty("role", "error" if state in ("denied", "failed") else "")
        self.message.style().polish(self.message)
        self.button.setText(translate("CallView", "Stop waiting") if state == "waiting"
                            else translate("CallView", "Close"))

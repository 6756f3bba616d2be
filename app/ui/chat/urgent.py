"""Urgent messages and the user's status.

``UrgentBanner`` stands above the conversation while an urgent message of another member is
not acknowledged (the chat service re-notifies until it is): who, the text (PHI-tagged),
*Open* and *Acknowledge*. ``PresenceBox`` sets the user's status; under *Do not disturb*
only urgent messages notify.
"""

from __future__ import annotations

from PySide6.QtCore import QCoreApplication, Qt, Signal
from PySide6.QtWidgets import QComboBox, QFrame, QHBoxLayout, QLabel, QPushButton, QWidget

from app.ui.i18n import fill
from app.ui.phi import mark_phi

PRESENCE_STATES = ("available", "dnd")


class UrgentBanner(QFrame):
    """Emits ``open(room_id, event_id)`` and ``acknowledge(room_id, event_id)``."""

    open = Signal(str, str)
    acknowledge = Signal(str, str)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("urgentBanner")
        self.setStyleSheet("QFrame#urgentBanner { border: 2px solid #b3261e; "
                           "border-radius: 6px; }")
        self.text = QLabel()
        self.text.setObjectName("urgentText")
        self.text.setWordWrap(True)
        self.text.setTextFormat(Qt.TextFormat.PlainText)
        mark_phi(self.text)
        self.open_button = QPushButton()
        self.open_button.clicked.connect(lambda: self._emit(self.open))
        self.ack_button = QPushButton()
        self.ack_button.setObjectName("urgentAcknowledge")
        self.ack_button.clicked.connect(lambda: self._emit(self.acknowledge))
        row = QHBoxLayout(self)
        row.setContentsMargins(12, 8, 12, 8)
        row.addWidget(self.text, 1)
        row.addWidget(self.open_button)
        row.addWidget(self.ack_button)
        self.target: tuple[str, str] | None = None
        self.count = 0
        self.hide()
        self.retranslate()

    def show_urgent(self, room_id: str, event_id: str, sender_name: str, text: str,
                    count: int) -> None:
        """The oldest unacknowledged urgent message, and how many wait in all."""
        translate = QCoreApplication.translate
        self.target = (room_id, event_id)
        self.count = count
        line = fill(translate("UrgentBanner", "Urgent from %1: %2"), sender_name, text)
        if count > 1:
            line = fill(translate("UrgentBanner", "%1 (and %2 more)"), line, str(count - 1))
        self.text.setText(line)
        self.show()

    def clear(self) -> None:
        self.target = None
        self.count = 0
        self.text.clear()
        self.hide()

    def _emit(self, signal: Signal) -> None:
        if self.target is not None:
            signal.emit(*self.target)

    def retranslate(self) -> None:
        translate = QCoreApplication.translate
        self.open_button.setText(translate("UrgentBanner", "Open"))
        self.ack_button.setText(translate("UrgentBanner", "Acknowledge"))


class PresenceBox(QComboBox):
    """The user's status; emits ``chosen(status)`` when the user changes it."""

    chosen = Signal(str)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("presence")
        for status in PRESENCE_STATES:
            self.addItem("", status)
        self.retranslate()
        self.activated.connect(lambda index: self.chosen.emit(self.itemData(index)))

    def set_status(self, status: str) -> None:
        index = self.findData(status)
        if index >= 0:
            self.setCurrentIndex(index)

    def status(self) -> str:
        return str(self.currentData())

    def retranslate(self) -> None:
        translate = QCoreApplication.translate
        self.setItemText(0, translate("PresenceBox", "Available"))
        self.setItemText(1, translate("PresenceBox", "Do not disturb (only urgent messages)"))
        self.setAccessibleName(translate("PresenceBox", "Your status"))


DISAPPEAR_CHOICES = (0, 3600, 86_400, 7 * 86_400)


class DisappearBox(QComboBox):
    """A room's disappearing-messages setting; emits ``chosen(seconds)`` (0: off)."""

    chosen = Signal(int)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("disappearing")
        # Narrow in the room header (the popup still shows the whole texts).
        self.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.setMinimumContentsLength(12)
        for seconds in DISAPPEAR_CHOICES:
            self.addItem("", seconds)
        self.retranslate()
        self.activated.connect(lambda index: self.chosen.emit(int(self.itemData(index))))

    def set_seconds(self, seconds: int) -> None:
        index = self.findData(seconds)
        if index < 0:  # set elsewhere to another value: shown as it is
            self.addItem(fill(QCoreApplication.translate("DisappearBox", "After %1 s"),
                              str(seconds)), seconds)
            index = self.count() - 1
        self.setCurrentIndex(index)

    def retranslate(self) -> None:
        translate = QCoreApplication.translate
        texts = (translate("DisappearBox", "Messages stay"),
                 translate("DisappearBox", "Disappear after 1 hour"),
                 translate("DisappearBox", "Disappear after 1 day"),
                 translate("DisappearBox", "Disappear after 7 days"))
        for index, text in enumerate(texts):
            self.setItemText(index, text)
        self.setToolTip(translate("DisappearBox", "Messages of this conversation are removed "
                                  "from every member's device this long after sending"))


def presence_text(status: str) -> str:
    """Another member's status as the member list shows it ("" when available)."""
    if status == "dnd":
        return QCoreApplication.translate("PresenceBox", "Do not disturb")
    return ""

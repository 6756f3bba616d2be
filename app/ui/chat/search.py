"""Searching the history this device holds (decrypted, in the encrypted cache).

Nothing is sent anywhere: the relay has only ciphertext. Results are PHI (they quote
messages) and are tagged so; choosing one opens its room.
"""

from __future__ import annotations

from dataclasses import dataclass

from PySide6.QtCore import QCoreApplication, Qt, QTimer, Signal
from PySide6.QtWidgets import QLabel, QLineEdit, QListWidget, QListWidgetItem, QVBoxLayout, QWidget

from app.ui.i18n import fill
from app.ui.phi import mark_phi

HIT_ROLE = Qt.ItemDataRole.UserRole
SNIPPET = 90  # characters of context around the match


@dataclass(frozen=True, slots=True)
class SearchHit:
    room_id: str
    event_id: str
    room_title: str
    sender: str
    when: str
    text: str


def snippet(text: str, keyword: str) -> str:
    """The part of ``text`` around the first match, on one line."""
    flat = " ".join(text.split())
    at = flat.lower().find(keyword.lower())
    if at < 0 or len(flat) <= SNIPPET:
        return flat[:SNIPPET] + ("…" if len(flat) > SNIPPET else "")
    start = max(0, at - SNIPPET // 3)
    end = min(len(flat), start + SNIPPET)
    return ("…" if start else "") + flat[start:end] + ("…" if end < len(flat) else "")


class SearchBox(QLineEdit):
    """The search field; results appear in :class:`SearchResults` as the user types."""

    changedQuery = Signal(str)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("chatSearch")
        self.setClearButtonEnabled(True)
        mark_phi(self)  # a search term can be a patient's name
        self._debounce = QTimer(self)
        self._debounce.setSingleShot(True)
        self._debounce.setInterval(150)
        self._debounce.timeout.connect(lambda: self.changedQuery.emit(self.text().strip()))
        self.textChanged.connect(lambda _t: self._debounce.start())
        self.retranslate()

    def search_now(self) -> None:
        self._debounce.stop()
        self.changedQuery.emit(self.text().strip())

    def retranslate(self) -> None:
        translate = QCoreApplication.translate
        self.setPlaceholderText(translate("ChatSearch", "Search messages (Ctrl+F)"))
        self.setToolTip(translate("ChatSearch", "Searches the messages kept on this device; "
                                  "nothing is sent to the server"))
        self.setAccessibleName(translate("ChatSearch", "Search messages"))


class SearchResults(QWidget):
    hitChosen = Signal(object)  # SearchHit

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("searchResults")
        mark_phi(self)
        self.summary = QLabel()
        self.summary.setProperty("role", "subtle")
        self.summary.setWordWrap(True)
        self.list = QListWidget()
        self.list.setObjectName("searchHits")
        self.list.setWordWrap(True)
        self.list.setStyleSheet("QListWidget#searchHits::item { padding: 8px 10px; }")
        self.list.itemActivated.connect(self._chosen)
        self.list.itemClicked.connect(self._chosen)
        column = QVBoxLayout(self)
        column.setContentsMargins(0, 0, 0, 0)
        column.addWidget(self.summary)
        column.addWidget(self.list, 1)

    def set_hits(self, keyword: str, hits: list[SearchHit]) -> None:
        translate = QCoreApplication.translate
        self.list.clear()
        for hit in hits:
            item = QListWidgetItem(fill("%1 · %2 · %3\n%4", hit.room_title, hit.sender,
                                        hit.when, snippet(hit.text, keyword)))
            item.setData(HIT_ROLE, hit)
            self.list.addItem(item)
        if hits:
            self.summary.setText(fill(translate("ChatSearch", "Messages containing “%1”:"),
                                      keyword))
        else:
            self.summary.setText(fill(translate("ChatSearch", "No messages on this device "
                                                "contain “%1”."), keyword))

    def hits(self) -> list[SearchHit]:
        return [self.list.item(i).data(HIT_ROLE) for i in range(self.list.count())]

    def _chosen(self, item: QListWidgetItem) -> None:
        hit = item.data(HIT_ROLE)
        if isinstance(hit, SearchHit):
            self.hitChosen.emit(hit)

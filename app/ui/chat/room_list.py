"""The conversations: one line per room with its members and how many messages are unread.

Rooms carry no name on the relay (a name could identify a patient, and the relay must learn
nothing): a room is called after its other members. Invitations are listed first.
"""

from __future__ import annotations

from dataclasses import dataclass

from PySide6.QtCore import QCoreApplication, QModelIndex, QPersistentModelIndex, QRect, Qt, Signal
from PySide6.QtGui import QColor, QFont, QPainter, QPalette
from PySide6.QtWidgets import (
    QListWidget,
    QListWidgetItem,
    QStyle,
    QStyledItemDelegate,
    QStyleOptionViewItem,
    QWidget,
)

from app.ui.i18n import fill

ROOM_ROLE = Qt.ItemDataRole.UserRole
UNREAD_ROLE = Qt.ItemDataRole.UserRole + 1
INVITED_ROLE = Qt.ItemDataRole.UserRole + 2


@dataclass(frozen=True, slots=True)
class RoomEntry:
    room_id: str
    title: str
    unread: int
    invited: bool
    last_ts_ms: int


class _UnreadDelegate(QStyledItemDelegate):
    """Draws the unread count as a pill at the right of the line."""

    def paint(self, painter: QPainter, option: QStyleOptionViewItem,
              index: QModelIndex | QPersistentModelIndex) -> None:
        unread = int(index.data(UNREAD_ROLE) or 0)
        invited = bool(index.data(INVITED_ROLE))
        opt = QStyleOptionViewItem(option)
        self.initStyleOption(opt, index)
        if unread or invited:
            opt.font.setWeight(QFont.Weight.DemiBold)
        badge = ""
        if invited:
            badge = QCoreApplication.translate("RoomList", "New")
        elif unread:
            badge = str(unread) if unread < 100 else "99+"
        metrics = opt.fontMetrics
        pill_width = metrics.horizontalAdvance(badge) + 16 if badge else 0
        opt.rect = opt.rect.adjusted(0, 0, -(pill_width + 8), 0)
        style = opt.widget.style() if opt.widget is not None else None
        # The full-width selection background first, then the text in the narrowed rect.
        full = QStyleOptionViewItem(opt)
        full.rect = option.rect
        full.text = ""
        if style is not None:
            style.drawControl(QStyle.ControlElement.CE_ItemViewItem, full, painter, opt.widget)
            style.drawControl(QStyle.ControlElement.CE_ItemViewItem, opt, painter, opt.widget)
        if not badge:
            return
        painter.save()
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        height = metrics.height() + 4
        rect = QRect(option.rect.right() - pill_width - 8,
                     option.rect.center().y() - height // 2, pill_width, height)
        palette = option.palette
        fill = palette.color(QPalette.ColorRole.Highlight)
        painter.setBrush(fill if not invited else QColor("#8a4b00"))
        painter.setPen(Qt.PenStyle.NoPen)
        painter.drawRoundedRect(rect, height / 2, height / 2)
        painter.setPen(palette.color(QPalette.ColorRole.HighlightedText)
                       if not invited else QColor("#ffffff"))
        font = QFont(opt.font)
        font.setWeight(QFont.Weight.DemiBold)
        painter.setFont(font)
        painter.drawText(rect, Qt.AlignmentFlag.AlignCenter, badge)
        painter.restore()


class RoomList(QListWidget):
    roomChosen = Signal(str)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("roomList")
        self.setItemDelegate(_UnreadDelegate(self))
        self.setUniformItemSizes(True)
        self.setStyleSheet("QListWidget#roomList::item { padding: 10px 12px; }")
        self.currentItemChanged.connect(self._changed)
        self._filling = False

    def set_rooms(self, entries: list[RoomEntry], current: str | None) -> None:
        self._filling = True
        try:
            self.clear()
            ordered = sorted(entries, key=lambda e: (not e.invited, -e.last_ts_ms, e.title))
            for entry in ordered:
                item = QListWidgetItem(entry.title)
                item.setData(ROOM_ROLE, entry.room_id)
                item.setData(UNREAD_ROLE, entry.unread)
                item.setData(INVITED_ROLE, entry.invited)
                item.setToolTip(entry.title)
                if entry.unread:
                    item.setData(Qt.ItemDataRole.AccessibleTextRole, fill(
                        QCoreApplication.translate("RoomList", "%1, %2 unread"), entry.title,
                        str(entry.unread)))
                self.addItem(item)
                if entry.room_id == current:
                    self.setCurrentItem(item)
        finally:
            self._filling = False

    def room_ids(self) -> list[str]:
        return [str(self.item(i).data(ROOM_ROLE)) for i in range(self.count())]

    def unread(self, room_id: str) -> int:
        for i in range(self.count()):
            if self.item(i).data(ROOM_ROLE) == room_id:
                return int(self.item(i).data(UNREAD_ROLE) or 0)
        raise KeyError(room_id)

    def select(self, room_id: str) -> None:
        for i in range(self.count()):
            if self.item(i).data(ROOM_ROLE) == room_id:
                self.setCurrentRow(i)
                return

    def _changed(self, item: QListWidgetItem | None, _previous: object) -> None:
        if item is not None and not self._filling:
            self.roomChosen.emit(str(item.data(ROOM_ROLE)))

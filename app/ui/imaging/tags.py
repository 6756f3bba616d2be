"""The DICOM tag panel: every element of the current image (sequences indented), filterable.
Values include names, IDs and dates, so the whole panel is PHI-tagged."""

from __future__ import annotations

from PySide6.QtWidgets import (
    QLineEdit,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

from app.services.imaging import TagRow
from app.ui.phi import mark_phi


class TagPanel(QWidget):
    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        mark_phi(self)
        self.setObjectName("tagPanel")
        self.filter = QLineEdit()
        self.filter.setClearButtonEnabled(True)
        self.filter.textChanged.connect(self._apply_filter)
        self.tree = QTreeWidget()
        self.tree.setColumnCount(4)
        self.tree.setRootIsDecorated(True)
        self.tree.setUniformRowHeights(True)
        self.tree.setAlternatingRowColors(True)
        column = QVBoxLayout(self)
        column.setContentsMargins(0, 0, 0, 0)
        column.addWidget(self.filter)
        column.addWidget(self.tree, 1)
        self.rows: list[TagRow] = []
        self.retranslate()

    def retranslate(self) -> None:
        self.filter.setPlaceholderText(self.tr("Filter tags (keyword, tag or value)"))
        self.tree.setHeaderLabels([self.tr("Tag"), self.tr("Keyword"), self.tr("VR"),
                                   self.tr("Value")])

    def set_rows(self, rows: list[TagRow]) -> None:
        self.rows = rows
        self.tree.clear()
        parents: list[QTreeWidgetItem] = []
        for row in rows:
            item = QTreeWidgetItem([row.tag, row.keyword, row.vr, row.value])
            del parents[row.depth:]
            if parents:
                parents[-1].addChild(item)
            else:
                self.tree.addTopLevelItem(item)
            if row.vr == "SQ":
                parents.append(item)
        self.tree.resizeColumnToContents(0)
        self.tree.resizeColumnToContents(1)
        self.tree.resizeColumnToContents(2)
        self._apply_filter(self.filter.text())

    def _apply_filter(self, text: str) -> None:
        needle = text.strip().lower()
        for n in range(self.tree.topLevelItemCount()):
            self._filter_item(self.tree.topLevelItem(n), needle)

    def _filter_item(self, item: QTreeWidgetItem, needle: str) -> bool:
        own = not needle or any(needle in item.text(c).lower() for c in range(4))
        child_match = False
        for n in range(item.childCount()):
            child_match |= self._filter_item(item.child(n), needle)
        item.setHidden(not (own or child_match))
        return own or child_match

    def visible_texts(self) -> list[str]:
        out = []
        for n in range(self.tree.topLevelItemCount()):
            item = self.tree.topLevelItem(n)
            if not item.isHidden():
                out.append(item.text(3))
        return out

"""Who is in the room, and each of their devices with how far this device trusts it.

Members and devices are this device's own view (membership events it saw, self-signed
directory entries it checked), never the relay's word alone. Choosing a device and pressing
*Verify* starts a SAS verification with it.
"""

from __future__ import annotations

from dataclasses import dataclass

from PySide6.QtCore import QCoreApplication, Qt, Signal
from PySide6.QtGui import QBrush, QColor, QFont
from PySide6.QtWidgets import (
    QHBoxLayout,
    QLabel,
    QPushButton,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

from app.crypto.store import TrustLevel
from app.ui.chat.texts import fingerprint, short_device, trust_state, trust_text
from app.ui.i18n import fill

DEVICE_ROLE = Qt.ItemDataRole.UserRole
TRUST_ROLE = Qt.ItemDataRole.UserRole + 1


@dataclass(frozen=True, slots=True)
class DeviceEntry:
    user_id: str
    device_id: str
    ed25519: str
    trust: TrustLevel
    allowed: bool  # the trust policy lets it receive room keys


@dataclass(frozen=True, slots=True)
class MemberEntry:
    user_id: str
    name: str
    state: str  # joined | invited
    is_self: bool
    devices: tuple[DeviceEntry, ...]
    status: str = ""  # their presence as the list shows it ("" when available)


_STATE_COLOURS = {"ok": "#1e7b34", "bad": "#b3261e"}


class MemberPanel(QWidget):
    verifyRequested = Signal(object)  # DeviceEntry
    blockRequested = Signal(object)  # DeviceEntry

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("memberPanel")
        self.heading = QLabel()
        self.heading.setObjectName("memberHeading")
        font = self.heading.font()
        font.setWeight(QFont.Weight.DemiBold)
        self.heading.setFont(font)
        self.tree = QTreeWidget()
        self.tree.setObjectName("memberTree")
        self.tree.setColumnCount(1)
        self.tree.setHeaderHidden(True)
        self.tree.setRootIsDecorated(True)
        self.tree.setUniformRowHeights(False)  # a device takes two lines: id, then trust
        self.tree.setStyleSheet("QTreeWidget#memberTree::item { padding: 3px 0; }")
        self.tree.currentItemChanged.connect(self._sync)
        self.detail = QLabel()
        self.detail.setWordWrap(True)
        self.detail.setProperty("role", "subtle")
        self.detail.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.verify = QPushButton()
        self.verify.setObjectName("memberVerify")
        self.verify.clicked.connect(lambda: self._emit(self.verifyRequested))
        self.block = QPushButton()
        self.block.setObjectName("memberBlock")
        self.block.clicked.connect(lambda: self._emit(self.blockRequested))
        buttons = QHBoxLayout()
        buttons.addWidget(self.verify)
        buttons.addWidget(self.block)
        buttons.addStretch(1)
        column = QVBoxLayout(self)
        column.setContentsMargins(12, 12, 12, 12)
        column.setSpacing(8)
        column.addWidget(self.heading)
        column.addWidget(self.tree, 1)
        column.addWidget(self.detail)
        column.addLayout(buttons)
        self.retranslate()
        self._sync()

    def set_members(self, members: list[MemberEntry]) -> None:
        translate = QCoreApplication.translate
        chosen = self.current_device()
        self.tree.clear()
        for member in members:
            label = member.name
            if member.is_self:
                label = fill(translate("MemberPanel", "%1 (you)"), member.name)
            if member.state == "invited":
                label = fill(translate("MemberPanel", "%1 (invited)"), label)
            if member.status:
                label = fill(translate("MemberPanel", "%1 · %2"), label, member.status)
            top = QTreeWidgetItem([label])
            font = top.font(0)
            font.setWeight(QFont.Weight.DemiBold)
            top.setFont(0, font)
            self.tree.addTopLevelItem(top)
            for device in member.devices:
                trust = trust_text(device.trust, allowed=device.allowed)
                child = QTreeWidgetItem([fill(translate("MemberPanel", "Device %1"),
                                              short_device(device.device_id)) + "\n" + trust])
                child.setData(0, DEVICE_ROLE, device)
                child.setData(0, TRUST_ROLE, trust)
                state = trust_state(device.trust)
                if state:
                    child.setForeground(0, QBrush(QColor(_STATE_COLOURS[state])))
                child.setToolTip(0, fingerprint(device.ed25519))
                top.addChild(child)
                if chosen is not None and (chosen.user_id, chosen.device_id) == (
                        device.user_id, device.device_id):
                    self.tree.setCurrentItem(child)
            if member.is_self and not member.devices:
                top.addChild(QTreeWidgetItem([translate("MemberPanel", "Only this device")]))
        self.tree.expandAll()
        self._sync()

    def current_device(self) -> DeviceEntry | None:
        item = self.tree.currentItem()
        value = item.data(0, DEVICE_ROLE) if item is not None else None
        return value if isinstance(value, DeviceEntry) else None

    def select_device(self, user_id: str, device_id: str) -> bool:
        for i in range(self.tree.topLevelItemCount()):
            top = self.tree.topLevelItem(i)
            for j in range(top.childCount()):
                device = top.child(j).data(0, DEVICE_ROLE)
                if isinstance(device, DeviceEntry) and (device.user_id, device.device_id) == (
                        user_id, device_id):
                    self.tree.setCurrentItem(top.child(j))
                    return True
        return False

    def trust_texts(self) -> dict[str, str]:
        """device id -> the trust shown (tests, accessibility)."""
        found = {}
        for i in range(self.tree.topLevelItemCount()):
            top = self.tree.topLevelItem(i)
            for j in range(top.childCount()):
                device = top.child(j).data(0, DEVICE_ROLE)
                if isinstance(device, DeviceEntry):
                    found[device.device_id] = str(top.child(j).data(0, TRUST_ROLE))
        return found

    def _emit(self, signal: Signal) -> None:
        device = self.current_device()
        if device is not None:
            signal.emit(device)  # type: ignore[attr-defined]

    def _sync(self, *_: object) -> None:
        device = self.current_device()
        self.verify.setEnabled(device is not None and device.trust is not TrustLevel.BLOCKED)
        self.block.setEnabled(device is not None and device.trust is not TrustLevel.BLOCKED)
        if device is None:
            self.detail.setText(QCoreApplication.translate(
                "MemberPanel", "Choose a device to see its fingerprint or verify it."))
        else:
            self.detail.setText(fill(QCoreApplication.translate(
                "MemberPanel", "Fingerprint: %1"), fingerprint(device.ed25519)))

    def retranslate(self) -> None:
        translate = QCoreApplication.translate
        self.heading.setText(translate("MemberPanel", "Members and devices"))
        self.tree.setAccessibleName(translate("MemberPanel", "Members and devices"))
        self.verify.setText(translate("MemberPanel", "Verify…"))
        self.verify.setToolTip(translate(
            "MemberPanel", "Compare emoji with the device's owner to make sure nobody is in "
            "between"))
        self.block.setText(translate("MemberPanel", "Block"))
        self.block.setToolTip(translate("MemberPanel", "Never send messages to this device"))
        self._sync()

"""The IT administrator's Devices page: every enrolled workstation, who it belongs to, its
state and any order it has not acknowledged yet; approve a waiting one after comparing its
key fingerprint with what its screen shows; log out, revoke or remotely wipe one.

Revoke, wipe and log out ask for confirmation first (they end a clinician's session; a wipe
destroys what the device holds). The server audits each change with the administrator as
actor; the page shows no audit content.
"""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import QEvent, Qt
from PySide6.QtWidgets import (
    QAbstractItemView,
    QCheckBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QMessageBox,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from app.services.device_admin import DeviceAction, DeviceAdminService, ManagedDevice
from app.services.session import fingerprint
from app.ui.asyncbridge import TaskRunner
from app.ui.audit.requests import PageRequests
from app.ui.audit.texts import timestamp
from app.ui.form_error import form_error_label
from app.ui.i18n import fill

Confirm = Callable[[QWidget, str, str], bool]


def ask(parent: QWidget, title: str, text: str) -> bool:
    answer = QMessageBox.question(parent, title, text,
                                  QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No,
                                  QMessageBox.StandardButton.No)
    return answer == QMessageBox.StandardButton.Yes


class DevicesPanel(PageRequests, QWidget):
    def __init__(self, service: DeviceAdminService, runner: TaskRunner, *,
                 confirm: Confirm = ask, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("deviceAdmin")
        self._service, self._runner, self._confirm = service, runner, confirm
        self.devices: list[ManagedDevice] = []

        self.pending_only = QCheckBox()
        self.pending_only.toggled.connect(lambda _on: self.load_all())
        self.refresh_button = QPushButton()
        self.refresh_button.clicked.connect(self.load_all)
        top = QHBoxLayout()
        top.addWidget(self.pending_only)
        top.addStretch(1)
        top.addWidget(self.refresh_button)

        self.table = QTableWidget(0, 6)
        self.table.setObjectName("deviceTable")
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.verticalHeader().hide()
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        header.setStretchLastSection(True)
        self.table.itemSelectionChanged.connect(self._selected)

        self.buttons: dict[DeviceAction, QPushButton] = {}
        row = QHBoxLayout()
        self.selection_text = QLabel()
        self.selection_text.setObjectName("deviceSelection")
        self.selection_text.setWordWrap(True)
        self.selection_text.setTextInteractionFlags(
            Qt.TextInteractionFlag.TextSelectableByMouse)
        # Two lines (who, then the key) whether or not a row is selected: no jumping layout.
        self.selection_text.setMinimumHeight(self.fontMetrics().lineSpacing() * 2 + 4)
        row.addStretch(1)
        for action in ("logout", "revoke", "wipe", "approve"):
            button = QPushButton()
            button.setObjectName(f"device_{action}")
            button.clicked.connect(lambda _c=False, a=action: self.act(a))
            self.buttons[action] = button
            row.addWidget(button)

        self.error = form_error_label("formError")
        self.done_text = QLabel()
        self.done_text.setObjectName("deviceDone")
        self.done_text.setWordWrap(True)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.error)
        layout.addLayout(top)
        layout.addWidget(self.table, 1)
        layout.addWidget(self.selection_text)
        layout.addLayout(row)
        layout.addWidget(self.done_text)
        self.retranslate()
        self._selected()


    def _request_failed(self, message: str) -> None:
        super()._request_failed(message)
        self._selected()  # the buttons come back for another try

    def load_all(self) -> None:
        self._run(self._service.devices(pending_only=self.pending_only.isChecked()), self._show)

    # -- table ---------------------------------------------------------------------------------

    def state_text(self, device: ManagedDevice) -> str:
        texts = {"pending": self.tr("Waiting for approval"), "active": self.tr("Active"),
                 "revoked": self.tr("Revoked"), "wiped": self.tr("Wiped")}
        orders = {"logout": self.tr("log-out ordered"), "wipe": self.tr("wipe ordered")}
        text = texts.get(device.state, device.state)
        if device.order in orders:
            text += " · " + orders[device.order]
        return text

    def _show(self, devices: list[ManagedDevice]) -> None:
        keep = self.selected()
        self.devices = devices
        self.table.setRowCount(len(devices))
        for row, d in enumerate(devices):
            mine = d.device_id == self._service.own_device_id
            name = d.display_name + (self.tr(" (this workstation)") if mine else "")
            seen = timestamp(d.last_seen_ms) if d.last_seen_ms else self.tr("never")
            for column, text in enumerate((d.username, name, self.state_text(d), seen,
                                           d.device_id, fingerprint(d.ed25519))):
                self.table.setItem(row, column, QTableWidgetItem(text))
        if keep is not None:
            for row, d in enumerate(devices):
                if d.device_id == keep.device_id:
                    self.table.selectRow(row)
        self._selected()

    def selected(self) -> ManagedDevice | None:
        rows = self.table.selectionModel().selectedRows()
        if not rows or rows[0].row() >= len(self.devices):
            return None
        return self.devices[rows[0].row()]

    def allowed(self, device: ManagedDevice | None) -> set[DeviceAction]:
        """What the server would accept for ``device`` from this administrator."""
        if device is None or device.state == "wiped":
            return set()
        if device.device_id == self._service.own_device_id:
            return set()
        allowed: set[DeviceAction] = {"wipe"}
        if device.state == "pending":
            allowed.add("approve")
        if device.state != "revoked":
            allowed.add("revoke")
        if device.state in ("pending", "active") and device.order == "none":
            allowed.add("logout")
        return allowed

    def _selected(self) -> None:
        device = self.selected()
        allowed = self.allowed(device)
        for action, button in self.buttons.items():
            button.setEnabled(action in allowed and not self.busy)
        if device is None:
            self.selection_text.setText(self.tr("Select a device."))
        else:
            # The whole fingerprint, to read against the one the workstation shows.
            self.selection_text.setText(fill(self.tr("%1 · %2\nKey fingerprint: %3"),
                                             device.username, device.display_name,
                                             fingerprint(device.ed25519)))

    # -- actions -------------------------------------------------------------------------------

    def act(self, action: DeviceAction) -> None:
        device = self.selected()
        if device is None or action not in self.allowed(device):
            return
        question = {
            "logout": self.tr("End %1's session on %2? They can sign in again."),
            "revoke": self.tr("Revoke %2 (%1)? It can no longer sign in and deletes its data "
                              "the next time it reaches the server."),
            "wipe": self.tr("Wipe %2 (%1)? Its keys and everything it holds are destroyed "
                            "as soon as it is online. This cannot be undone."),
        }.get(action)
        if question is not None and not self._confirm(
                self, self.tr("Confirm"), fill(question, device.username, device.display_name)):
            return
        for button in self.buttons.values():
            button.setEnabled(False)
        done = {
            "approve": self.tr("%1's %2 is approved: they can sign in now."),
            "logout": self.tr("Log-out ordered for %2 (%1)."),
            "revoke": self.tr("%2 (%1) is revoked."),
            "wipe": self.tr("Wipe ordered for %2 (%1): it runs when the device is online."),
        }[action]

        def finished(_order) -> None:
            self.done_text.setText(fill(done, device.username, device.display_name))
            self.load_all()

        self._run(self._service.act(device.device_id, action), finished)

    def retranslate(self) -> None:
        self.pending_only.setText(self.tr("Only devices waiting for approval"))
        self.refresh_button.setText(self.tr("Refresh"))
        self.table.setHorizontalHeaderLabels([
            self.tr("User"), self.tr("Workstation"), self.tr("State"), self.tr("Last seen"),
            self.tr("Device ID"), self.tr("Key fingerprint")])
        self.buttons["approve"].setText(self.tr("&Approve"))
        self.buttons["logout"].setText(self.tr("&Log out"))
        self.buttons["revoke"].setText(self.tr("&Revoke"))
        self.buttons["wipe"].setText(self.tr("&Wipe…"))
        self._selected()

    def changeEvent(self, event: QEvent) -> None:
        if event.type() == QEvent.Type.LanguageChange:
            self.retranslate()
        super().changeEvent(event)

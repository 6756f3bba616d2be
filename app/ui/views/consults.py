"""Consults: the consults the user may open, with how long each grant lasts, and the
emergency-access ("break-glass") entry for a consult the user is not a member of.

Time-limited grants show their end ("Until 14:30"); an emergency grant says so. While one
is active the workspace shows the emergency-access banner (app/ui/banner.py). Consult ids
lead to a patient: the list is PHI-tagged (hidden by the lock, covered in a shared screen).

Dependencies come through :meth:`ConsultsView.configure` (the workspace builds its views
without arguments); unconfigured, the view shows its placeholder texts only.
"""

from __future__ import annotations

from PySide6.QtCore import QCoreApplication, Qt, QTimer
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHBoxLayout,
    QHeaderView,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QWidget,
)

from app.services.access_review import BreakGlassService, RoomAccess
from app.ui.asyncbridge import TaskRunner, loop_running
from app.ui.audit.break_glass import BreakGlassDialog, ask_break_glass
from app.ui.audit.texts import grant_text, role_in_room
from app.ui.phi import mark_phi
from app.ui.views.placeholder import PlaceholderView

REFRESH_MS = 60_000  # grants lapse on the server's clock; the list follows within a minute


class ConsultsView(PlaceholderView):
    def __init__(self, parent: QWidget | None = None) -> None:
        self._service: BreakGlassService | None = None
        self._runner: TaskRunner | None = None
        super().__init__(parent)
        self.refresh_button = QPushButton()
        self.refresh_button.setObjectName("consultsRefresh")
        self.emergency_button = QPushButton()
        self.emergency_button.setObjectName("emergencyAccess")
        self.refresh_button.clicked.connect(self.refresh)
        self.emergency_button.clicked.connect(lambda: self.open_emergency_access())
        self.table = QTableWidget(0, 3)
        self.table.setObjectName("consultsTable")
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.verticalHeader().hide()
        self.table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Stretch)
        self.actions_row = QWidget()
        row = QHBoxLayout(self.actions_row)
        row.setContentsMargins(0, 0, 0, 0)
        row.addWidget(self.refresh_button)
        row.addStretch(1)
        row.addWidget(self.emergency_button)
        layout = self.layout()
        layout.takeAt(layout.count() - 1)  # the placeholder's stretch: the table fills instead
        layout.addWidget(self.actions_row)
        layout.addWidget(self.table, 1)
        self.actions_row.hide()
        self.table.hide()
        self._timer = QTimer(self)
        self._timer.setInterval(REFRESH_MS)
        self._timer.timeout.connect(self.refresh)
        self.retranslate()

    @staticmethod
    def title() -> str:
        return QCoreApplication.translate("ConsultsView", "Consults")

    def texts(self) -> tuple[str, str, str]:
        translate = QCoreApplication.translate
        if self._service is not None:
            return (
                translate("ConsultsView", "Your consults"),
                translate("ConsultsView",
                          "The consults you may open, your role in each and how long your "
                          "access lasts. Access granted for a limited time ends on its own."),
                translate("ConsultsView",
                          "Not a member, and a patient needs care now? Use Emergency access: "
                          "it is recorded and reviewed by an auditor afterwards."),
            )
        return (
            translate("ConsultsView", "No consults yet"),
            translate("ConsultsView",
                      "Consults you are invited to will be listed here, with their members and "
                      "start time. You can join a video consult from this list."),
            translate("ConsultsView",
                      "When a colleague invites you, the consult appears here without a "
                      "restart."),
        )

    def configure(self, *, runner: TaskRunner, service: BreakGlassService) -> None:
        self._runner, self._service = runner, service
        service.changed.connect(self._show_rooms)
        mark_phi(self.table)  # from now on it lists consult ids (each leads to a patient)
        self.actions_row.show()
        self.table.show()
        self.retranslate()
        self.refresh()
        self._timer.start()

    @property
    def service(self) -> BreakGlassService | None:
        return self._service

    def refresh(self) -> None:
        if self._service is None or self._runner is None or not loop_running():
            return
        self._runner.run_task(self._service.refresh(), owner=self,
                              on_result=lambda _rooms: self._show_rooms())

    def _show_rooms(self) -> None:
        if self._service is None:
            return
        self._service.expire()
        rooms: list[RoomAccess] = self._service.rooms
        self.table.setRowCount(len(rooms))
        for i, room in enumerate(rooms):
            cells = (room.room_id, role_in_room(room.role),
                     grant_text(room.expires_ms, break_glass=room.break_glass))
            for j, text in enumerate(cells):
                item = QTableWidgetItem(text)
                if j == 2 and room.expires_ms is not None:
                    item.setForeground(Qt.GlobalColor.darkRed if room.break_glass
                                       else Qt.GlobalColor.darkYellow)
                self.table.setItem(i, j, item)

    def open_emergency_access(self, room_id: str = "") -> BreakGlassDialog | None:
        """The break-glass dialog (also for a consult the user was refused: pass its id)."""
        if self._service is None or self._runner is None:
            return None
        dialog = ask_break_glass(self._service, self._runner, self, room_id=room_id)
        dialog.accepted.connect(self.refresh)
        return dialog

    def retranslate(self) -> None:
        super().retranslate()
        if not hasattr(self, "table"):
            return  # called by the base class before the widgets exist
        translate = QCoreApplication.translate
        self.table.setHorizontalHeaderLabels([
            translate("ConsultsView", "Consult"), translate("ConsultsView", "Your role"),
            translate("ConsultsView", "Access")])
        self.refresh_button.setText(translate("ConsultsView", "Refresh"))
        self.emergency_button.setText(translate("ConsultsView", "Emergency access…"))
        self.emergency_button.setToolTip(translate(
            "ConsultsView", "Read-only access to a consult you are not a member of, for a "
            "limited time; recorded and reviewed"))
        self._show_rooms()

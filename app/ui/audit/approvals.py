"""The IT administrator's page in the Admin area: the second-person approvals the audit
policy asks for (exports, policy changes), and the audit policy itself.

Separation of duties: IT admins manage users and devices but read no audit content, so
nothing here shows an entry, an alert or a break-glass reason -- only what a request is
(kind, who asked, when, its filters). Devices have their own page (app/ui/audit/devices.py);
users are managed with the server's admin command, which the page says.
"""

from __future__ import annotations

from PySide6.QtCore import QEvent
from PySide6.QtWidgets import (
    QAbstractItemView,
    QGroupBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from app.services.access_review import AccessReviewService, ApprovalRequest, AuditPolicy
from app.ui.asyncbridge import TaskRunner
from app.ui.audit.requests import PageRequests
from app.ui.audit.texts import timestamp
from app.ui.form_error import form_error_label
from app.ui.i18n import fill
from app.ui.phi import mark_phi


class ApprovalsPanel(PageRequests, QWidget):
    def __init__(self, service: AccessReviewService, runner: TaskRunner,
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("approvals")
        self._service, self._runner = service, runner
        self.requests: list[ApprovalRequest] = []
        self.policy_box = QGroupBox()
        self.policy_text = QLabel()
        self.policy_text.setObjectName("auditPolicy")
        self.policy_text.setWordWrap(True)
        QVBoxLayout(self.policy_box).addWidget(self.policy_text)

        self.requests_box = QGroupBox()
        self.table = QTableWidget(0, 4)
        self.table.setObjectName("approvalTable")
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.verticalHeader().hide()
        self.table.horizontalHeader().setSectionResizeMode(
            QHeaderView.ResizeMode.ResizeToContents)
        self.table.horizontalHeader().setStretchLastSection(True)
        mark_phi(self.table)  # an export's filters may name a consult
        self.table.itemSelectionChanged.connect(self._selected)
        self.approve = QPushButton()
        self.approve.setObjectName("approveRequest")
        self.deny = QPushButton()
        self.deny.setObjectName("denyRequest")
        self.refresh_button = QPushButton()
        self.approve.clicked.connect(lambda: self.decide(True))
        self.deny.clicked.connect(lambda: self.decide(False))
        self.refresh_button.clicked.connect(self.load_all)
        buttons = QHBoxLayout()
        buttons.addWidget(self.refresh_button)
        buttons.addStretch(1)
        buttons.addWidget(self.deny)
        buttons.addWidget(self.approve)
        box = QVBoxLayout(self.requests_box)
        box.addWidget(self.table, 1)
        box.addLayout(buttons)

        self.devices_box = QGroupBox()
        self.devices_text = QLabel()
        self.devices_text.setObjectName("devicesNote")
        self.devices_text.setWordWrap(True)
        QVBoxLayout(self.devices_box).addWidget(self.devices_text)

        self.error = form_error_label("formError")
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.error)
        layout.addWidget(self.requests_box, 1)
        layout.addWidget(self.policy_box)
        layout.addWidget(self.devices_box)
        self._selected()
        self.retranslate()


    def load_all(self) -> None:
        self._run(self._service.policy(), self._show_policy)
        self._run(self._service.pending_approvals(), self._show_requests)

    def _show_policy(self, policy: AuditPolicy) -> None:
        yes, no = self.tr("yes"), self.tr("no")
        self.policy_text.setText(
            self.tr("Audit exports need a second person's approval: ")
            + (yes if policy.export_approval else no) + "\n"
            + self.tr("Policy changes need a second IT administrator: ")
            + (yes if policy.policy_approval else no))

    def _kind_text(self, kind: str) -> str:
        return {"audit.export": self.tr("Audit export"),
                "policy.change": self.tr("Audit policy change")}.get(kind, kind)

    def _show_requests(self, requests: list[ApprovalRequest]) -> None:
        self.requests = requests
        self.table.setRowCount(len(requests))
        for row, r in enumerate(requests):
            params = ", ".join(f"{k}={v}" for k, v in sorted(r.params.items()))
            for column, text in enumerate((
                    f"#{r.id} {self._kind_text(r.kind)}", self._service.name(r.requested_by),
                    timestamp(r.requested_ms), params)):
                self.table.setItem(row, column, QTableWidgetItem(text))
        self.requests_box.setTitle(fill(self.tr("Waiting for your approval (%1)"),
                                        str(len(requests))))
        if requests:
            self.table.selectRow(0)
        self._selected()

    def selected(self) -> ApprovalRequest | None:
        rows = self.table.selectionModel().selectedRows()
        if not rows or rows[0].row() >= len(self.requests):
            return None
        return self.requests[rows[0].row()]

    def _selected(self) -> None:
        enabled = self.selected() is not None
        self.approve.setEnabled(enabled)
        self.deny.setEnabled(enabled)

    def decide(self, approve: bool) -> None:
        request = self.selected()
        if request is None:
            return
        self.approve.setEnabled(False)
        self.deny.setEnabled(False)
        self._run(self._service.decide(request.id, approve=approve),
                  lambda _r: self.load_all())

    def retranslate(self) -> None:
        self.policy_box.setTitle(self.tr("Audit policy"))
        self.requests_box.setTitle(self.tr("Waiting for your approval"))
        self.table.setHorizontalHeaderLabels([
            self.tr("Request"), self.tr("Requested by"), self.tr("When"), self.tr("Details")])
        self.approve.setText(self.tr("&Approve"))
        self.deny.setText(self.tr("&Deny"))
        self.refresh_button.setText(self.tr("Refresh"))
        self.devices_box.setTitle(self.tr("Users"))
        self.devices_text.setText(self.tr(
            "Users are added, disabled and reset with the server's admin command "
            "(safeconsult-server admin). You cannot approve your own request, and the audit "
            "trail itself is for auditors only."))

    def changeEvent(self, event: QEvent) -> None:
        if event.type() == QEvent.Type.LanguageChange:
            self.retranslate()
        super().changeEvent(event)

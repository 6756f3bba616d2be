"""Admin: what the signed-in role may do here, and nothing the server would refuse.

* **Auditors** get the access review (app/ui/audit/review.py): the audit log with filters,
  the chain's state, anomaly alerts, the emergency-access review queue with sign-off, and
  exports.
* **IT administrators** get the enrolled devices with approve / log out / revoke / wipe
  (app/ui/audit/devices.py), and the approvals the audit policy asks of a second person with
  the audit policy (app/ui/audit/approvals.py) -- no audit content: they may not read it.

The navigation lists this area for those two roles only (app/ui/workspace.py); the server
enforces the same rules. Dependencies come through :meth:`AdminView.configure`;
unconfigured, the view shows its placeholder texts.
"""

from __future__ import annotations

from PySide6.QtCore import QCoreApplication
from PySide6.QtWidgets import QWidget

from app.services.access_review import AccessReviewService, capabilities
from app.services.device_admin import DeviceAdminService
from app.ui.asyncbridge import TaskRunner
from app.ui.views.placeholder import PlaceholderView


class AdminView(PlaceholderView):
    def __init__(self, parent: QWidget | None = None) -> None:
        self._role: str | None = None
        self.panel: QWidget | None = None
        self.devices_panel: QWidget | None = None  # IT admins: enrolled devices
        self.approvals_panel: QWidget | None = None  # IT admins: second-person approvals
        super().__init__(parent)

    @staticmethod
    def title() -> str:
        return QCoreApplication.translate("AdminView", "Admin")

    def texts(self) -> tuple[str, str, str]:
        translate = QCoreApplication.translate
        if self._role == "auditor":
            return (
                translate("AdminView", "Access review"),
                translate("AdminView",
                          "Who did what, on which device, for which consult: the server's "
                          "tamper-evident audit log."),
                "",
            )
        if self._role == "it_admin":
            return (
                translate("AdminView", "Devices and approvals"),
                translate("AdminView",
                          "Enrolled workstations: approve, log out, revoke or wipe them. "
                          "Requests that need a second person: audit exports and audit "
                          "policy changes."),
                "",
            )
        return (
            translate("AdminView", "No devices waiting for approval"),
            translate(
                "AdminView",
                "Enrolled devices, approval requests, revocation and remote wipe, and the "
                "audit trail will be managed here.",
            ),
            translate(
                "AdminView",
                "Until then, use the server's admin command (safeconsult-server admin).",
            ),
        )

    def configure(self, *, runner: TaskRunner, service: AccessReviewService, role: str,
                  devices: DeviceAdminService | None = None) -> None:
        """Build the page for ``role`` (once per sign-in: the workspace is rebuilt for the
        next user)."""
        self._role = role
        allowed = capabilities(role)
        panel: QWidget | None = None
        if allowed.read_audit:
            from app.ui.audit.review import AccessReviewPanel

            panel = AccessReviewPanel(service, runner)
            panel.load_all()
        elif allowed.decide_approvals:
            from PySide6.QtWidgets import QTabWidget

            from app.ui.audit.approvals import ApprovalsPanel

            tabs = QTabWidget()
            tabs.setObjectName("itAdminPages")
            if devices is not None:
                from app.ui.audit.devices import DevicesPanel

                self.devices_panel = DevicesPanel(devices, runner)
                tabs.addTab(self.devices_panel, "")
                self.devices_panel.load_all()
            self.approvals_panel = ApprovalsPanel(service, runner)
            tabs.addTab(self.approvals_panel, "")
            self.approvals_panel.load_all()
            panel = tabs
        if panel is not None:
            self.panel = panel
            layout = self.layout()
            layout.takeAt(layout.count() - 1)  # the placeholder's stretch
            layout.addWidget(panel, 1)
            layout.setContentsMargins(24, 16, 24, 12)
            layout.setSpacing(8)
        self.retranslate()

    def retranslate(self) -> None:
        super().retranslate()
        self.hint.setVisible(bool(self.hint.text()))
        tabs = self.panel if self.approvals_panel is not None else None
        if tabs is not None:
            for page, text in ((self.devices_panel, self.tr("Devices")),
                               (self.approvals_panel, self.tr("Approvals"))):
                index = tabs.indexOf(page) if page is not None else -1
                if index >= 0:
                    tabs.setTabText(index, text)

"""Admin: what the signed-in role may do here, and nothing the server would refuse.

* **Auditors** get the access review (app/ui/audit/review.py): the audit log with filters,
  the chain's state, anomaly alerts, the emergency-access review queue with sign-off, and
  exports.
* **IT administrators** get the approvals the audit policy asks of a second person and the
  audit policy (app/ui/audit/approvals.py) -- no audit content: they may not read it.

The navigation lists this area for those two roles only (app/ui/workspace.py); the server
enforces the same rules. Dependencies come through :meth:`AdminView.configure`;
unconfigured, the view shows its placeholder texts.
"""

from __future__ import annotations

from PySide6.QtCore import QCoreApplication
from PySide6.QtWidgets import QWidget

from app.services.access_review import AccessReviewService, capabilities
from app.ui.asyncbridge import TaskRunner
from app.ui.views.placeholder import PlaceholderView


class AdminView(PlaceholderView):
    def __init__(self, parent: QWidget | None = None) -> None:
        self._role: str | None = None
        super().__init__(parent)
        self.panel: QWidget | None = None

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
                translate("AdminView", "Approvals"),
                translate("AdminView",
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

    def configure(self, *, runner: TaskRunner, service: AccessReviewService, role: str) -> None:
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
            from app.ui.audit.approvals import ApprovalsPanel

            panel = ApprovalsPanel(service, runner)
            panel.load_all()
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

"""Admin: device approval, revocation and wipe, audit trail (placeholder for now).

Shown only to IT administrators and auditors; the server enforces the same rule.
"""

from __future__ import annotations

from PySide6.QtCore import QCoreApplication

from app.ui.views.placeholder import PlaceholderView


class AdminView(PlaceholderView):
    @staticmethod
    def title() -> str:
        return QCoreApplication.translate("AdminView", "Admin")

    def texts(self) -> tuple[str, str, str]:
        return (
            QCoreApplication.translate("AdminView", "No devices waiting for approval"),
            QCoreApplication.translate(
                "AdminView",
                "Enrolled devices, approval requests, revocation and remote wipe, and the "
                "audit trail will be managed here.",
            ),
            QCoreApplication.translate(
                "AdminView",
                "Until then, use the server's admin command (safeconsult-server admin).",
            ),
        )

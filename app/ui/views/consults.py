"""Consults: the list of video consults the user is a member of (placeholder for now)."""

from __future__ import annotations

from PySide6.QtCore import QCoreApplication

from app.ui.views.placeholder import PlaceholderView


class ConsultsView(PlaceholderView):
    @staticmethod
    def title() -> str:
        return QCoreApplication.translate("ConsultsView", "Consults")

    def texts(self) -> tuple[str, str, str]:
        return (
            QCoreApplication.translate("ConsultsView", "No consults yet"),
            QCoreApplication.translate(
                "ConsultsView",
                "Consults you are invited to will be listed here, with their members and "
                "start time. You can join a video consult from this list.",
            ),
            QCoreApplication.translate(
                "ConsultsView",
                "When a colleague invites you, the consult appears here without a restart.",
            ),
        )

"""Chat: end-to-end encrypted conversations per consult (placeholder for now)."""

from __future__ import annotations

from PySide6.QtCore import QCoreApplication

from app.ui.views.placeholder import PlaceholderView


class ChatView(PlaceholderView):
    @staticmethod
    def title() -> str:
        return QCoreApplication.translate("ChatView", "Chat")

    def texts(self) -> tuple[str, str, str]:
        return (
            QCoreApplication.translate("ChatView", "No conversations yet"),
            QCoreApplication.translate(
                "ChatView",
                "Secure messages with your colleagues will appear here. They are encrypted "
                "on this device and can be read only by the members of the consult.",
            ),
            QCoreApplication.translate(
                "ChatView", "Open a consult to start a conversation with its members.",
            ),
        )

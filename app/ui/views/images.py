"""Images: DICOM series shared in consults (placeholder for now)."""

from __future__ import annotations

from PySide6.QtCore import QCoreApplication

from app.ui.views.placeholder import PlaceholderView


class ImagesView(PlaceholderView):
    @staticmethod
    def title() -> str:
        return QCoreApplication.translate("ImagesView", "Images")

    def texts(self) -> tuple[str, str, str]:
        return (
            QCoreApplication.translate("ImagesView", "No images shared with you"),
            QCoreApplication.translate(
                "ImagesView",
                "Medical images (DICOM series) shared in your consults will be listed here "
                "and open in the viewer.",
            ),
            QCoreApplication.translate(
                "ImagesView", "Images are stored encrypted on this device and removed when "
                "their retention period ends.",
            ),
        )

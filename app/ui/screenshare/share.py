"""One screen share: capture -> redacting track (-> call) with its preview, paused on lock."""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import QObject
from PySide6.QtWidgets import QWidget

from app.rtc.ocr import Engine, OcrWorker
from app.rtc.redaction import RedactionPolicy, Redactor
from app.rtc.screen_track import ScreenShareTrack
from app.services.app_state import AppState
from app.ui.observe import observe
from app.ui.phi import phi_rects
from app.ui.screenshare.capture import Geometry, WindowCapture
from app.ui.screenshare.preview import SharePreview


class ScreenShare(QObject):
    """Shares ``window`` (or its screen, ``mode="screen"``) through :attr:`track`.

    ``ocr``: pattern redaction at ``ocr_interval_s`` by ``ocr_engine`` (default: tesseract)
    with ``ocr_patterns`` (default: ``app.rtc.ocr.DEFAULT_PATTERNS``). The auto-lock is observed
    on ``state.locked``: while locked the redactor is paused (black frames), nothing is grabbed.
    """

    def __init__(self, window: QWidget, *, state: AppState | None = None, fps: float = 5.0,
                 policy: RedactionPolicy | None = None, ocr: bool = False,
                 ocr_engine: Engine | None = None, ocr_patterns: dict[str, str] | None = None,
                 ocr_interval_s: float = 1.0, geometry: Geometry = phi_rects,
                 mode: str = "window", preview: bool = True,
                 parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.state = state
        self.redactor = Redactor(policy)
        self.ocr: OcrWorker | None = None
        if ocr:
            self.ocr = OcrWorker(self.redactor, engine=ocr_engine, patterns=ocr_patterns,
                                 interval_s=ocr_interval_s)
        self.preview = SharePreview(self.redactor) if preview else None
        self.track = ScreenShareTrack(
            self.redactor, fps=fps, ocr=self.ocr,
            on_sent=self.preview.show_sent if self.preview is not None else None)
        self.capture = WindowCapture(window, self.track.push, fps=fps, state=state,
                                     mode=mode, geometry=geometry, parent=self)
        self._calls: Any = None
        self._call_id: str | None = None
        if state is not None:
            self.redactor.paused = state.locked
            observe(state.events.locked, self._locked_changed, self)

    def _locked_changed(self, locked: bool) -> None:
        self.redactor.paused = locked  # before anything else can grab or send
        if locked:
            self.capture.push_locked()

    def start(self) -> None:
        if self.ocr is not None:
            self.ocr.start()
        self.capture.start()

    def share_in(self, calls: Any, call_id: str) -> None:
        """Send this share instead of the camera in ``call_id`` (a ``CallsService``)."""
        calls.share_screen(call_id, self.track)
        self._calls, self._call_id = calls, call_id

    def stop(self) -> None:
        """Back to the camera in the call, stop grabbing, scanning and sending."""
        self.capture.stop()
        if self._calls is not None and self._call_id in self._calls.calls:
            self._calls.share_screen(self._call_id, None)
        self._calls = self._call_id = None
        self.track.stop()

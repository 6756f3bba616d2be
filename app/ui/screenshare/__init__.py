"""Screen sharing with redaction: capture on the GUI thread (``capture``), the redacting track
and OCR off it (``app.rtc.screen_track``, ``app.rtc.ocr``), the preview of what is sent
(``preview``), tied together by :class:`~app.ui.screenshare.share.ScreenShare`."""

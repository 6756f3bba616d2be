"""The image viewer's widgets: canvas (pixels, window/level, zoom, measurements), watermark
overlay, viewer pane, series browser, tag panel and ECG traces. See docs/imaging.md."""

"""QImage over a numpy uint8 buffer, without a copy."""

from __future__ import annotations

import numpy as np
from PySide6.QtGui import QImage


class ArrayImage:
    """A QImage that shares memory with ``array``; the array is kept here for as long as
    the QImage lives (QImage does not own a buffer it was given)."""

    __slots__ = ("_display", "array", "image")

    def __init__(self, array: np.ndarray) -> None:
        array = np.ascontiguousarray(array)
        if array.dtype != np.uint8:
            raise ValueError("ArrayImage takes uint8 pixels")
        rows, cols = array.shape[:2]
        if array.ndim == 2:
            fmt = QImage.Format.Format_Grayscale8
            stride = cols
        elif array.ndim == 3 and array.shape[2] == 3:
            fmt = QImage.Format.Format_RGB888
            stride = cols * 3
        else:
            raise ValueError("ArrayImage takes (rows, cols) or (rows, cols, 3) pixels")
        self.array = array
        self.image = QImage(array.data, cols, rows, stride, fmt)
        self._display: QImage | None = None

    @property
    def display(self) -> QImage:
        """The image in the backing store's format, converted once: QPainter draws RGB32
        about 5x faster than Grayscale8 (which it converts on every draw), 0.4 vs 2.4 ms
        for 512 x 512 scaled; the conversion itself takes ~0.07 ms."""
        if self._display is None:
            self._display = self.image.convertToFormat(QImage.Format.Format_RGB32)
        return self._display

    @property
    def width(self) -> int:
        return self.image.width()

    @property
    def height(self) -> int:
        return self.image.height()


def to_array(image: QImage) -> np.ndarray:
    """An RGB uint8 copy of ``image`` (for tests and export of what is on screen)."""
    rgb = image.convertToFormat(QImage.Format.Format_RGB888)
    rows, cols, stride = rgb.height(), rgb.width(), rgb.bytesPerLine()
    buf = np.frombuffer(rgb.constBits(), np.uint8, count=rows * stride).reshape(rows, stride)
    return buf[:, : cols * 3].reshape(rows, cols, 3).copy()

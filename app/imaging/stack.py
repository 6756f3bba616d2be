"""A series as a scrollable stack of frames, decoded on demand and kept in a bounded cache.

A viewer scrolls back and forth through a series and re-windows the slice on screen. The
first look at a slice decodes it and prepares its index image (see :mod:`render`); later
looks and every window change reuse that, so they cost one LUT build and one gather.
The cache is bounded in bytes (least recently used frames go first) so that a 2000-slice
study does not hold every decoded slice at once.
"""

from __future__ import annotations

from collections import OrderedDict

import numpy as np

from app.core.imaging_types import WindowLevel
from app.imaging.load import Instance, Series
from app.imaging.render import Frame, load_frame

DEFAULT_CACHE_BYTES = 768 * 1024 * 1024


class SliceStack:
    def __init__(self, series: Series, *, cache_bytes: int = DEFAULT_CACHE_BYTES) -> None:
        self.series = series
        self._slots: list[tuple[Instance, int]] = []
        for inst in series.instances:
            try:
                frames = max(1, int(inst.dataset.get("NumberOfFrames", 1) or 1))
            except (TypeError, ValueError):
                frames = 1
            self._slots.extend((inst, f) for f in range(frames))
        self._cache: OrderedDict[int, Frame] = OrderedDict()
        self._cache_bytes = cache_bytes
        self._held = 0

    def __len__(self) -> int:
        return len(self._slots)

    def frame(self, index: int) -> Frame:
        """The prepared frame at ``index`` (0 = first in display order)."""
        cached = self._cache.get(index)
        if cached is not None:
            self._cache.move_to_end(index)
            return cached
        inst, number = self._slots[index]
        frame = load_frame(inst.dataset, number)
        self._remember(index, frame)
        return frame

    def render(self, index: int, window: WindowLevel | None = None) -> np.ndarray:
        return self.frame(index).render(window)

    def _remember(self, index: int, frame: Frame) -> None:
        size = frame.nbytes
        self._cache[index] = frame
        self._held += size
        while self._held > self._cache_bytes and len(self._cache) > 1:
            _old, evicted = self._cache.popitem(last=False)
            self._held -= evicted.nbytes

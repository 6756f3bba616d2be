"""The screen-share video track: every frame aiortc encodes comes out of the redaction step.

The capture side (``app.ui.screenshare``, on the GUI thread) :meth:`~ScreenShareTrack.push`\\ es
snapshots -- the grabbed image with the PHI geometry measured at the same moment. ``recv`` takes
the newest one at the share rate and runs :meth:`Redactor.process` and the conversion to a
video frame in the track's own worker thread, so neither the GUI thread nor the asyncio loop
(the same thread under qasync) pays for it. ``on_sent`` gets exactly the array that was
encoded, for the preview ("what others see").

Fail closed: if the worker raises, or produces nothing in time, the frame is black.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import fractions
import logging
import threading
import time
from collections.abc import Callable

import numpy as np
from aiortc.mediastreams import MediaStreamError, VideoStreamTrack
from av import VideoFrame

from app.rtc.ocr import OcrWorker
from app.rtc.redaction import Outcome, Redactor, Snapshot, blank

log = logging.getLogger(__name__)

CLOCK_RATE = 90_000
TIME_BASE = fractions.Fraction(1, CLOCK_RATE)

SentHook = Callable[[np.ndarray, Outcome], None]  # called on the asyncio loop, per frame sent


def to_video_frame(image: np.ndarray) -> VideoFrame:
    """An RGB (H, W, 3) or BGRA (H, W, 4) array as a yuv420p frame (cropped to even sizes)."""
    height, width = image.shape[:2]
    image = image[: height - height % 2, : width - width % 2]
    fmt = "bgra" if image.ndim == 3 and image.shape[2] == 4 else "rgb24"
    frame = VideoFrame.from_ndarray(np.ascontiguousarray(image), format=fmt)
    return frame.reformat(format="yuv420p")


class ScreenShareTrack(VideoStreamTrack):
    kind = "video"

    def __init__(self, redactor: Redactor, *, fps: float = 5.0, ocr: OcrWorker | None = None,
                 on_sent: SentHook | None = None, work_timeout_s: float = 1.0) -> None:
        super().__init__()
        self.redactor = redactor
        self.fps = fps
        self.ocr = ocr
        self.on_sent = on_sent
        self.work_timeout_s = work_timeout_s
        self._latest: Snapshot | None = None
        self._latest_lock = threading.Lock()
        self._size: tuple[int, int] | None = None  # (w, h) of the last frame sent
        self._pool = concurrent.futures.ThreadPoolExecutor(1, "screenshare-redact")
        self._start_time: float | None = None
        self._next_at = 0.0
        self.sent = 0

    # -- capture side (any thread) -----------------------------------------------------------

    def push(self, snapshot: Snapshot) -> None:
        with self._latest_lock:
            self._latest = snapshot
        if self.ocr is not None and not snapshot.locked and snapshot.image is not None:
            self.ocr.offer(snapshot)

    # -- aiortc side -------------------------------------------------------------------------

    async def next_timestamp(self) -> tuple[int, fractions.Fraction]:
        """Paces ``recv`` at ``fps``. A track that fell behind (a busy machine) starts over from
        now instead of sending a burst to catch up: a share wants the newest picture."""
        if self.readyState != "live":
            raise MediaStreamError
        now = time.time()
        if self._start_time is None:
            self._start_time = self._next_at = now
        else:
            self._next_at += 1 / self.fps
            if self._next_at > now:
                await asyncio.sleep(self._next_at - now)
            else:
                self._next_at = now
        return int((self._next_at - self._start_time) * CLOCK_RATE), TIME_BASE

    def _work(self, snapshot: Snapshot | None) -> tuple[VideoFrame, np.ndarray, Outcome]:
        image, outcome = self.redactor.process(snapshot, size=self._size)
        try:
            frame = to_video_frame(image)
        except Exception as exc:  # a frame we cannot convert: black, same size as before
            log.warning("screen frame conversion failed",
                        extra={"event": "screenshare_frame_failed",
                               "reason_code": exc.__class__.__name__})
            image, outcome = self._blank(), Outcome.ERROR
            frame = to_video_frame(image)
        self._size = (frame.width, frame.height)
        return frame, image, outcome

    def _blank(self) -> np.ndarray:
        width, height = self._size or (640, 360)
        return blank(height, width)

    async def recv(self) -> VideoFrame:
        pts, time_base = await self.next_timestamp()
        with self._latest_lock:
            snapshot = self._latest
        loop = asyncio.get_running_loop()
        try:
            frame, image, outcome = await asyncio.wait_for(
                asyncio.wrap_future(self._pool.submit(self._work, snapshot), loop=loop),
                self.work_timeout_s)
        except Exception as exc:  # timeout or anything else: black, never raw
            log.warning("screen frame not ready, blank sent",
                        extra={"event": "screenshare_frame_failed",
                               "reason_code": exc.__class__.__name__})
            image, outcome = self._blank(), Outcome.ERROR
            self.redactor.stats.count(outcome)
            frame = to_video_frame(image)
        frame.pts, frame.time_base = pts, time_base
        self.sent += 1
        if self.on_sent is not None:
            try:
                self.on_sent(image, outcome)
            except Exception as exc:  # a preview problem never stops the share
                log.info("preview hook failed", extra={"event": "screenshare_preview_failed",
                                                       "reason_code": exc.__class__.__name__})
        return frame

    def stop(self) -> None:
        super().stop()
        if self.ocr is not None:
            self.ocr.stop(timeout=0)
        self._pool.shutdown(wait=False, cancel_futures=True)

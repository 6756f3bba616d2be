"""One decoded or captured frame reaches several threads (a tile's worker, the encoder, the
recorder): conversions must not share PyAV's per-frame reformatter, nor stamp the frame."""

from __future__ import annotations

import threading

import numpy as np
from av import VideoFrame

from app.rtc.tracks import frame_to_rgb, private_copy


def _frame() -> VideoFrame:
    rgb = np.zeros((48, 64, 3), np.uint8)
    rgb[:, :32] = (200, 40, 10)
    frame = VideoFrame.from_ndarray(rgb, format="rgb24").reformat(format="yuv420p")
    frame.pts = 1234
    return frame


def test_private_copy_is_a_new_frame_with_the_same_pixels():
    frame = _frame()
    copy = private_copy(frame, format="yuv420p")  # nothing to convert: still a copy
    assert copy is not frame
    assert np.array_equal(copy.to_ndarray(), frame.to_ndarray())
    copy.pts = 99
    assert frame.pts == 1234  # the shared frame keeps its time stamp
    scaled = private_copy(frame, width=32, height=24, format="yuv420p")
    assert (scaled.width, scaled.height) == (32, 24) and (frame.width, frame.height) == (64, 48)


def test_many_threads_convert_one_frame_at_once():
    frame = _frame()
    expected = frame_to_rgb(frame)
    results: list[bool] = []

    def convert() -> None:
        for _ in range(50):
            ok = np.array_equal(frame_to_rgb(frame), expected)
            private_copy(frame, width=32, height=24)
            results.append(ok)

    threads = [threading.Thread(target=convert) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not any(t.is_alive() for t in threads)
    assert len(results) == 300 and all(results)

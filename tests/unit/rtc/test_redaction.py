"""The redaction step: black_out on any rectangles and frame sizes, and the fail-closed rules of
Redactor.process."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from app.rtc.redaction import (
    OcrBoxes,
    Outcome,
    Rect,
    RedactionPolicy,
    Redactor,
    Snapshot,
    black_out,
)

rects = st.builds(Rect, st.integers(-300, 300), st.integers(-300, 300),
                  st.integers(-50, 400), st.integers(-50, 400))


def noisy(height: int, width: int, channels: int, seed: int = 1) -> np.ndarray:
    rng = np.random.default_rng(seed)
    # 1..255 everywhere: a black pixel can only come from redaction.
    image = rng.integers(1, 256, size=(height, width, channels), dtype=np.uint8)
    if channels == 4:
        image[..., 3] = 255
    return image


def covered_mask(height: int, width: int, boxes, margin: int) -> np.ndarray:
    mask = np.zeros((height, width), dtype=bool)
    for rect in boxes:
        x0, y0 = max(rect.x - margin, 0), max(rect.y - margin, 0)
        x1 = min(rect.x + rect.w + margin, width)
        y1 = min(rect.y + rect.h + margin, height)
        if x1 > x0 and y1 > y0:
            mask[y0:y1, x0:x1] = True
    return mask


@settings(max_examples=150, deadline=None)
@given(height=st.integers(1, 120), width=st.integers(1, 160), channels=st.sampled_from([3, 4]),
       boxes=st.lists(rects, max_size=8), margin=st.integers(0, 6))
def test_black_out_covers_the_rects_and_touches_nothing_else(height, width, channels, boxes,
                                                             margin):
    image = noisy(height, width, channels)
    before = image.copy()
    black_out(image, boxes, margin)
    mask = covered_mask(height, width, boxes, margin)
    assert (image[mask][:, :3] == 0).all()  # every covered pixel is black
    if channels == 4:
        assert (image[..., 3] == 255).all()  # and opaque
    assert (image[~mask] == before[~mask]).all()  # nothing outside rect + margin changed


@settings(max_examples=60, deadline=None)
@given(height=st.integers(1, 60), width=st.integers(1, 60), boxes=st.lists(rects, max_size=5))
def test_gray_frames_too(height, width, boxes):
    image = np.full((height, width), 200, dtype=np.uint8)
    black_out(image, boxes, 2)
    mask = covered_mask(height, width, boxes, 2)
    assert (image[mask] == 0).all() and (image[~mask] == 200).all()


class Clock:
    def __init__(self, now: float = 100.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


WIDGET = (Rect(10, 10, 20, 10),)


def snap(clock: Clock, image=None, rects=WIDGET, *, lag: float = 0.0,
         age: float = 0.0, locked: bool = False) -> Snapshot:
    image = noisy(90, 160, 3) if image is None else image
    at = clock.now - age
    return Snapshot(image, None if rects is None else tuple(rects), at,
                    None if rects is None else at + lag, locked)


@settings(max_examples=80, deadline=None)
@given(height=st.integers(2, 90), width=st.integers(2, 120), boxes=st.lists(rects, max_size=6))
def test_process_never_raises_and_redacts_any_geometry(height, width, boxes):
    clock = Clock()
    redactor = Redactor(RedactionPolicy(margin=1), clock=clock)
    redactor.set_user_regions([Rect(-5, -5, 8, 8)])
    image = noisy(height, width, 3)
    out, outcome = redactor.process(snap(clock, image, boxes))
    assert outcome is Outcome.REDACTED
    mask = covered_mask(height, width, [*boxes, Rect(-5, -5, 8, 8)], 1)
    assert (out[mask] == 0).all() and (out[~mask] == image[~mask]).all()
    assert (image != 0).all()  # the snapshot's own image is left as grabbed


def test_redacted_frame_has_the_widget_user_and_ocr_boxes_black():
    clock = Clock()
    redactor = Redactor(RedactionPolicy(margin=2), clock=clock)
    redactor.set_user_regions([Rect(100, 50, 30, 20)])
    redactor.set_ocr(OcrBoxes((Rect(60, 70, 10, 5),), (160, 90), clock.now - 0.5, clock.now))
    out, outcome = redactor.process(snap(clock))
    assert outcome is Outcome.REDACTED
    for x0, y0, x1, y1 in ((8, 8, 32, 22), (98, 48, 132, 72), (58, 68, 72, 77)):
        assert (out[y0:y1, x0:x1] == 0).all()
    assert (out[30:45, 40:55] != 0).any()  # elsewhere the picture is there
    assert redactor.stats.frames == 1 and redactor.stats.blank == {}


@pytest.mark.parametrize(("make", "reason"), [
    (lambda c: None, Outcome.NO_FRAME),
    (lambda c: Snapshot(None, (), c.now, c.now), Outcome.NO_FRAME),
    (lambda c: snap(c, locked=True), Outcome.PAUSED),
    (lambda c: snap(c, rects=None), Outcome.NO_GEOMETRY),  # the geometry provider failed
    (lambda c: snap(c, lag=-0.2), Outcome.STALE_GEOMETRY),  # geometry older than the frame
    (lambda c: snap(c, age=3.0), Outcome.STALE_FRAME),  # capture stalled
    (lambda c: snap(c, image=np.zeros((4, 4, 3), dtype=np.float32)), Outcome.ERROR),
    (lambda c: snap(c, image=np.zeros((4,), dtype=np.uint8)), Outcome.ERROR),
    (lambda c: snap(c, rects=[object()]), Outcome.ERROR),  # a malformed rectangle
])
def test_anything_wrong_gives_a_black_frame(make, reason):
    clock = Clock()
    redactor = Redactor(clock=clock)
    out, outcome = redactor.process(make(clock))
    assert outcome is reason
    assert out.dtype == np.uint8 and out.ndim == 3 and not out[..., :3].any()
    assert redactor.stats.blank == {reason.value: 1}


def test_blank_frames_keep_the_size_asked_for():
    clock = Clock()
    redactor = Redactor(clock=clock)
    out, _ = redactor.process(snap(clock, rects=None), size=(320, 180))
    assert out.shape == (180, 320, 3) and not out.any()
    out, _ = redactor.process(snap(clock, image=noisy(50, 70, 4), rects=None))
    assert out.shape == (50, 70, 4) and not out[..., :3].any() and (out[..., 3] == 255).all()


def test_paused_redactor_sends_black():
    clock = Clock()
    redactor = Redactor(clock=clock)
    redactor.paused = True
    assert redactor.process(snap(clock))[1] is Outcome.PAUSED
    redactor.paused = False
    assert redactor.process(snap(clock))[1] is Outcome.REDACTED


def test_required_ocr_must_have_run_recently_on_this_frame_size():
    clock = Clock()
    redactor = Redactor(RedactionPolicy(ocr_required=True, ocr_max_age_s=2.0), clock=clock)
    assert redactor.process(snap(clock))[1] is Outcome.OCR_MISSING  # no pass yet
    redactor.set_ocr(OcrBoxes((), (160, 90), clock.now, clock.now))
    assert redactor.process(snap(clock))[1] is Outcome.REDACTED
    clock.now += 2.5  # passes stopped (tesseract failing, worker stuck)
    assert redactor.process(snap(clock))[1] is Outcome.OCR_MISSING
    redactor.set_ocr(OcrBoxes((), (320, 180), clock.now, clock.now))  # another frame size
    assert redactor.process(snap(clock))[1] is Outcome.OCR_MISSING


def test_rect_scaling_grows_outward():
    assert Rect(1, 1, 3, 3).scaled(1.5, 1.5) == Rect(1, 1, 5, 5)
    assert Rect(10, 20, 30, 40).scaled(2, 2) == Rect(20, 40, 60, 80)


def test_black_out_on_views_of_other_memory():
    for make in (lambda b: b[:, ::2], lambda b: b[5:30, 10:90]):  # strided; rows of a larger one
        base = noisy(40, 120, 4)
        before = base.copy()
        view = make(base)
        black_out(view, [Rect(3, 4, 10, 6)], 1)
        assert not view[3:11, 2:14, :3].any() and (view[3:11, 2:14, 3] == 255).all()
        assert (base != before).any(axis=2).sum() == 8 * 12  # nothing else changed

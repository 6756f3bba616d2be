"""Screen sharing end to end: a window with PHI-tagged labels (synthetic MRNs) is shared in a
real call between two signed-in clients through the reference server (TLS, signaling, aiortc on
loopback, VP8). What the *receiving* peer decodes is read back with tesseract.

Qt runs offscreen; the test's asyncio loop pumps Qt's events, so the capture's own QTimer
drives the grabs as it does in the app.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import time

import numpy as np
import pytest
from PySide6.QtGui import QFont
from PySide6.QtWidgets import QLabel, QVBoxLayout, QWidget

from app.core.phi import Phi
from app.rtc.ocr import TesseractOcr
from app.rtc.redaction import Outcome, RedactionPolicy
from app.services.app_state import AppState
from app.ui.phi import PhiLabel, phi_rects
from app.ui.screenshare.share import ScreenShare
from tests.integration.test_calls import consult, new_peer, wait_for
from tests.support.clients import server_db

pytestmark = pytest.mark.skipif(shutil.which("tesseract") is None,
                                reason="tesseract-ocr not installed")

TAGGED_MRN = "MRN 48213377"
TAGGED_NAME = "Jane Example-Patient"
UNTAGGED_ID = "Patient ID PT-0042917"  # in an untagged widget: only OCR can catch it
FREE_TEXT = "Ward round notes"  # not PHI: must stay readable, proving the OCR check sees text


def shared_window(width: int, height: int) -> QWidget:
    window = QWidget()
    window.setStyleSheet("background: white; color: black;")
    font = QFont()
    font.setPointSize(16)
    window.setFont(font)
    layout = QVBoxLayout(window)
    layout.addWidget(QLabel(FREE_TEXT))
    layout.addWidget(PhiLabel(Phi(TAGGED_MRN)))
    layout.addWidget(PhiLabel(Phi(TAGGED_NAME)))
    layout.addWidget(QLabel(UNTAGGED_ID))
    layout.addWidget(QLabel("Chest X-ray reviewed"))
    window.resize(width, height)
    window.show()
    return window


class Pump:
    """Runs Qt's event processing from the asyncio loop (timers, paints)."""

    def __init__(self, qapp) -> None:
        self.qapp = qapp
        self.task = asyncio.get_running_loop().create_task(self._run())

    async def _run(self) -> None:
        while True:
            self.qapp.processEvents()
            await asyncio.sleep(0.01)

    async def aclose(self) -> None:
        self.task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self.task


class Received:
    """Bob's decoded frames of a given size, with arrival times."""

    def __init__(self) -> None:
        self.frames: list[tuple[float, np.ndarray]] = []

    def __call__(self, peer, rgb: np.ndarray) -> None:
        self.frames.append((time.monotonic(), rgb))

    def of(self, shape: tuple[int, int], since: float = 0.0, until: float = float("inf")):
        return [f for t, f in self.frames if f.shape[:2] == shape and since <= t <= until]


def ocr_text(rgb: np.ndarray) -> str:
    big = np.repeat(np.repeat(rgb, 2, axis=0), 2, axis=1)  # small screen text reads better x2
    return " ".join(w.text for w in TesseractOcr()(big))


def is_black(rgb: np.ndarray) -> bool:
    return int(rgb.max()) <= 40  # VP8 round trip of a black frame


async def two_peers(open_server, tmp_path, received: Received):
    alice = await new_peer(open_server, tmp_path, "dr.alice", use_turn=False)
    bob = await new_peer(open_server, tmp_path, "dr.bob", use_turn=False, sink=received)
    room_id = await consult(alice, bob)
    call = await alice.calls.place_call(room_id)
    await wait_for(lambda: len(received.of((240, 320))) >= 3)  # Alice's camera reached Bob
    return alice, bob, call


async def test_the_receiver_sees_no_phi_and_black_over_the_tagged_widgets(
        open_server, tmp_path, qapp):
    pump = Pump(qapp)
    received = Received()
    alice, bob, call = await two_peers(open_server, tmp_path, received)
    state = AppState()
    window = shared_window(640, 400)
    share = ScreenShare(window, state=state, fps=5,
                        policy=RedactionPolicy(ocr_required=True, ocr_max_age_s=6.0),
                        ocr=True, ocr_interval_s=0.5)
    try:
        share.start()
        share.share_in(alice.calls, call.call_id)
        assert alice.ws.session.audit is not None
        await wait_for(lambda: share.ocr.passes >= 1, 20)
        await wait_for(lambda: sum(not is_black(f) for f in received.of((400, 640))) >= 6, 20)

        frames = received.of((400, 640))
        shown = [f for f in frames if not is_black(f)]
        # Every screen frame Bob got was black (before the first OCR pass) or redacted.
        assert len(frames) >= 6
        assert window.devicePixelRatio() == 1  # image pixels == widget pixels here
        expected = phi_rects(window)
        assert len(expected) == 2
        for frame in shown:
            for rect in expected:  # the tagged widgets' rectangles are black at the receiver
                area = frame[rect.y():rect.y() + rect.height(), rect.x():rect.x() + rect.width()]
                assert area.mean() < 12 and np.percentile(area, 99) < 60
        for frame in (shown[0], shown[-1]):
            text = ocr_text(frame)
            assert "Ward" in text and "notes" in text  # the OCR check reads what is sent
            for secret in ("48213377", "Jane", "Example", "0042917", "PT-"):
                assert secret not in text, secret
        # The preview shows the frames being sent, and they were all redacted or black.
        assert share.preview.frames_shown >= len(frames)
        assert set(share.redactor.stats.blank) <= {Outcome.OCR_MISSING.value,
                                                   Outcome.NO_FRAME.value}

        # Auto-lock: sharing pauses, Bob gets black frames; unlocked, the share resumes.
        state.locked = True
        locked_at = time.monotonic()
        await asyncio.sleep(2.0)
        state.locked = False
        unlocked_at = time.monotonic()
        while_locked = received.of((400, 640), locked_at + 0.6, unlocked_at)
        assert len(while_locked) >= 4 and all(is_black(f) for f in while_locked)
        assert share.redactor.stats.blank.get(Outcome.PAUSED.value, 0) >= 4
        await wait_for(lambda: any(not is_black(f) for f in
                                   received.of((400, 640), unlocked_at + 0.3)), 10)

        share.stop()  # back to the camera
        assert not call.sharing
        stopped_at = time.monotonic()
        await wait_for(lambda: len(received.of((240, 320), stopped_at)) >= 3, 10)
        await alice.ws.session.audit.flush()
        rows = server_db(open_server).connection().execute(
            "SELECT action, object_id FROM audit_log WHERE action LIKE 'client.screen.share%'"
            " ORDER BY seq").fetchall()
        assert [tuple(r) for r in rows] == [("client.screen.share.start", call.call_id),
                                            ("client.screen.share.stop", call.call_id)]
    finally:
        share.stop()
        window.close()
        await alice.close()
        await bob.close()
        await pump.aclose()


def raising_geometry(window):
    raise RuntimeError("geometry provider failed")


async def test_an_error_in_the_redaction_path_sends_black_frames(open_server, tmp_path, qapp,
                                                                 tmp_path_factory):
    pump = Pump(qapp)
    received = Received()
    alice, bob, call = await two_peers(open_server, tmp_path, received)
    broken = shared_window(640, 400)
    no_ocr = shared_window(480, 320)
    first = ScreenShare(broken, fps=8, geometry=raising_geometry)
    missing = tmp_path_factory.mktemp("no-tesseract") / "tesseract"  # OCR cannot run
    second = ScreenShare(no_ocr, fps=8, policy=RedactionPolicy(ocr_required=True), ocr=True,
                         ocr_engine=TesseractOcr(str(missing)), ocr_interval_s=0.3)
    try:
        # 1. The geometry provider raises on every frame: Bob gets only black.
        first.start()
        first.share_in(alice.calls, call.call_id)
        await wait_for(lambda: len(received.of((400, 640))) >= 8, 20)
        assert all(is_black(f) for f in received.of((400, 640)))
        assert first.redactor.stats.blank.get(Outcome.NO_GEOMETRY.value, 0) >= 8
        assert first.redactor.stats.blank.keys() <= {Outcome.NO_GEOMETRY.value}

        # 2. OCR is required and cannot run: Bob gets only black.
        second.start()
        alice.calls.share_screen(call.call_id, second.track)
        await wait_for(lambda: len(received.of((320, 480))) >= 8, 20)
        assert all(is_black(f) for f in received.of((320, 480)))
        assert second.ocr.failures >= 1 and second.ocr.passes == 0
        assert second.redactor.stats.blank.get(Outcome.OCR_MISSING.value, 0) >= 8
        # The shares really did grab content: the raw windows are not black.
        assert first.capture.grabs >= 8 and second.capture.grabs >= 8

        # One share replacing another is one share; hanging up ends it, on the record.
        await alice.calls.hangup(call.call_id)
        await alice.ws.session.audit.flush()
        rows = server_db(open_server).connection().execute(
            "SELECT action FROM audit_log WHERE action LIKE 'client.screen.share%'"
            " ORDER BY seq").fetchall()
        assert [r[0] for r in rows] == ["client.screen.share.start", "client.screen.share.stop"]
    finally:
        first.stop()
        second.stop()
        broken.close()
        no_ocr.close()
        await alice.close()
        await bob.close()
        await pump.aclose()

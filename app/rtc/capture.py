"""Camera and microphone capture (docs/calls.md, "Camera and microphone"): the camera via
OpenCV where it is installed and a camera opens, else the synthetic test pattern; the
microphone via sounddevice (PortAudio) where an input device exists, else the tone.

A camera is read by a thread of its own (``cv2.VideoCapture.read`` blocks for the device's
frame interval); the same thread converts the newest frame into an ``av.VideoFrame``. The
event loop -- the GUI thread under qasync -- only stamps the time on the frame it is handed;
aiortc encodes in its own executor and decodes in its own thread, so no media work runs on
the GUI thread.

A source is either a device index (``cv:0``) or, for tests and demos, a video file
(``file:/path``, looped). A source that cannot be opened falls back to the test pattern; one
that fails mid-call sends black frames of the same size (the peers' stall watchdogs keep
seeing media) and says so in :attr:`OpenCVCameraTrack.failed`.
"""

from __future__ import annotations

import asyncio
import contextlib
import fractions
import glob
import logging
import sys
import threading
import time
from collections import deque
from dataclasses import dataclass
from typing import Any

from aiortc.mediastreams import (
    VIDEO_CLOCK_RATE,
    VIDEO_TIME_BASE,
    MediaStreamError,
    MediaStreamTrack,
    VideoStreamTrack,
)
from av import AudioFrame, VideoFrame

from app.rtc.tracks import SyntheticVideoTrack, ToneAudioTrack

# opencv-python-headless, imported on first use (0.2-0.3 s: not at sign-in); None where it
# is not installed.
cv2: Any = ...


def _cv() -> Any:
    global cv2
    if cv2 is ...:
        try:
            import cv2 as module
        except ImportError:  # pragma: no cover - exercised where opencv is absent
            module = None
        cv2 = module
    return cv2

log = logging.getLogger(__name__)

SYNTHETIC = "synthetic"
TONE = "tone"
MAX_FAILED_READS = 15  # consecutive failed reads before a device counts as failed
STALL_S = 0.5  # no new frame for this long: a black frame goes out instead


@dataclass(frozen=True, slots=True)
class Device:
    key: str  # "synthetic", "cv:<index>", "file:<path>", "tone"
    label: str  # what the OS calls it (or our words for the fallbacks)
    kind: str  # "video" | "audio"


def opencv_available() -> bool:
    return _cv() is not None


def cameras() -> list[Device]:
    """The cameras OpenCV can open on this machine (none without opencv), then the test
    pattern, always last. Linux lists /dev/video* (opening each would wake every camera);
    elsewhere the first two indices are tried."""
    found: list[Device] = []
    if _cv() is not None:
        if sys.platform.startswith("linux"):
            indices = sorted(int(path[len("/dev/video"):]) for path in glob.glob("/dev/video*")
                             if path[len("/dev/video"):].isdigit())
        else:
            indices = [i for i in range(2) if _opens(i)]
        found = [Device(f"cv:{i}", f"Camera {i + 1}", "video") for i in indices]
    return [*found, Device(SYNTHETIC, "", "video")]


def microphones() -> list[Device]:
    """The input devices PortAudio (sounddevice) finds, then the tone, always last."""
    found: list[Device] = []
    sd = _sd()
    if sd is not None:
        try:
            devices = list(sd.query_devices())
        except Exception:  # PortAudio could not enumerate: no microphone
            devices = []
        found = [Device(f"sd:{index}", str(info.get("name", "")), "audio")
                 for index, info in enumerate(devices)
                 if int(info.get("max_input_channels", 0) or 0) > 0]
    return [*found, Device(TONE, "", "audio")]


# sounddevice (PortAudio), imported on first use; None where it or libportaudio is missing.
sounddevice: Any = ...


def _sd() -> Any:
    global sounddevice
    if sounddevice is ...:
        try:
            import sounddevice as module
        except (ImportError, OSError):  # no package, or no PortAudio library
            module = None
        sounddevice = module
    return sounddevice


def _opens(index: int) -> bool:
    capture = cv2.VideoCapture(index)
    try:
        return bool(capture.isOpened())
    finally:
        capture.release()


def _source(key: str) -> int | str | None:
    if key.startswith("cv:") and key[3:].isdigit():
        return int(key[3:])
    if key.startswith("file:") and len(key) > 5:
        return key[5:]
    return None


def open_camera(key: str, *, tag: int = 0, fps: float = 30.0) -> MediaStreamTrack:
    """The track for camera ``key``; the test pattern for "synthetic", without opencv, or
    when the device cannot be opened (logged, no device name in the log)."""
    source = _source(key)
    if source is None or _cv() is None:
        return SyntheticVideoTrack(tag)
    try:
        return OpenCVCameraTrack(source, fps=fps, loop=isinstance(source, str))
    except CameraUnavailable:
        log.warning("camera not available, sending the test pattern",
                    extra={"event": "camera_fallback"})
        return SyntheticVideoTrack(tag)


def open_microphone(key: str, *, stream_factory: Any = None) -> MediaStreamTrack:
    """The track for microphone ``key`` (``sd:<index>``); the tone for "tone", without
    sounddevice/PortAudio, or when the device cannot be opened."""
    if key.startswith("sd:") and key[3:].isdigit() and (stream_factory or _sd()) is not None:
        try:
            return MicrophoneTrack(int(key[3:]), stream_factory=stream_factory)
        except Exception:  # PortAudioError, ValueError: no such device, busy, ...
            log.warning("microphone not available, sending the tone",
                        extra={"event": "microphone_fallback"})
    return ToneAudioTrack()


class MicrophoneTrack(MediaStreamTrack):
    """A microphone through sounddevice: 48 kHz mono s16 in 20 ms blocks. PortAudio calls
    back in its own thread; the block is copied there and handed to the loop; ``recv`` only
    wraps it in an ``av.AudioFrame``. A device that stops delivering gives silence (timing
    kept, the peers' receivers see audio)."""

    kind = "audio"
    rate = 48_000
    samples = 960

    def __init__(self, device: int, *, stream_factory: Any = None) -> None:
        super().__init__()
        factory = stream_factory or _sd().InputStream
        self._lock = threading.Lock()
        self._blocks: deque[Any] = deque(maxlen=25)  # 0.5 s: older blocks are dropped
        self._wake: asyncio.Event | None = None
        self._loop_ref: asyncio.AbstractEventLoop | None = None
        self._sent = 0
        self.status_flags = 0  # PortAudio's over/underflow reports seen
        self._stream = factory(device=device, samplerate=self.rate, channels=1,
                               dtype="int16", blocksize=self.samples, callback=self._callback)
        self._stream.start()

    def _callback(self, indata: Any, frames: int, _time: Any, status: Any) -> None:
        if status:
            self.status_flags += 1
        with self._lock:
            self._blocks.append(indata[:, 0].copy() if indata.ndim == 2 else indata.copy())
        loop, wake = self._loop_ref, self._wake
        if loop is not None and wake is not None and not loop.is_closed():
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(wake.set)

    async def recv(self) -> AudioFrame:
        import numpy as np

        if self.readyState != "live":
            raise MediaStreamError
        loop = asyncio.get_running_loop()
        if self._wake is None:
            self._wake, self._loop_ref = asyncio.Event(), loop
        deadline = loop.time() + STALL_S
        block = None
        while block is None:
            with self._lock:
                block = self._blocks.popleft() if self._blocks else None
            if block is not None:
                break
            self._wake.clear()
            remaining = deadline - loop.time()
            if remaining <= 0:
                break
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), remaining)
        if block is None:  # the device stalled: silence of the block's length
            block = np.zeros(self.samples, np.int16)
        frame = AudioFrame.from_ndarray(np.asarray(block, np.int16).reshape(1, -1),
                                        format="s16", layout="mono")
        frame.sample_rate = self.rate
        frame.pts, frame.time_base = self._sent, fractions.Fraction(1, self.rate)
        self._sent += frame.samples
        return frame

    def stop(self) -> None:
        super().stop()
        with contextlib.suppress(Exception):
            self._stream.stop()
        with contextlib.suppress(Exception):
            self._stream.close()


class CameraUnavailable(RuntimeError):
    pass


class OpenCVCameraTrack(VideoStreamTrack):
    """A camera (or a looped video file) through ``cv2.VideoCapture``, read in a thread."""

    def __init__(self, source: int | str, *, fps: float = 30.0, loop: bool = False,
                 width: int = 640, height: int = 480) -> None:
        super().__init__()
        if _cv() is None:
            raise CameraUnavailable("opencv is not installed")
        self._capture = cv2.VideoCapture(source)
        if not self._capture.isOpened():
            self._capture.release()
            raise CameraUnavailable("the camera could not be opened")
        if isinstance(source, int):
            self._capture.set(cv2.CAP_PROP_FRAME_WIDTH, width)
            self._capture.set(cv2.CAP_PROP_FRAME_HEIGHT, height)
        self._loop = loop
        self._interval = 1.0 / fps if loop else 0.0  # a file is paced; a device paces itself
        self._lock = threading.Lock()
        self._newest: VideoFrame | None = None
        self._ready = threading.Event()
        self._stop = threading.Event()
        self.frames_read = 0
        self.failed = False
        self._fresh = False
        self._size = (width, height)
        self._black_interval = 1.0 / fps
        self._wake: asyncio.Event | None = None
        self._loop_ref: asyncio.AbstractEventLoop | None = None
        self._start: float | None = None
        self.reader_thread = threading.Thread(target=self._read, name="camera-reader",
                                              daemon=True)
        self.reader_thread.start()

    def _read(self) -> None:
        failures = 0
        next_at = time.monotonic()
        while not self._stop.is_set():
            ok, image = self._capture.read()
            if not ok and self._loop:
                self._capture.set(cv2.CAP_PROP_POS_FRAMES, 0)
                ok, image = self._capture.read()
            if not ok:
                failures += 1
                if failures >= MAX_FAILED_READS:
                    self.failed = True
                    self._ready.set()
                    self._stop.wait(0.1)
                continue
            failures = 0
            self.failed = False
            # Converted here, not on the loop, and to the encoder's own format: a frame that
            # still needed converting would be converted by every consumer at once (one
            # encoder per link, the self view), and PyAV's per-frame converter is not safe
            # to share between threads (it deadlocked).
            frame = VideoFrame.from_ndarray(image, format="bgr24").reformat(format="yuv420p")
            with self._lock:
                self._newest, self._fresh = frame, True
                self._size = (frame.width, frame.height)
            self.frames_read += 1
            self._ready.set()
            self._notify()
            if self._interval:
                next_at += self._interval
                delay = next_at - time.monotonic()
                if delay > 0:
                    self._stop.wait(delay)
                else:
                    next_at = time.monotonic()
        with contextlib.suppress(Exception):
            self._capture.release()

    async def recv(self) -> Any:
        """The next captured frame, each handed out once (a device paces itself; a file is
        paced by the reader); black frames at ``fps`` while nothing new comes."""
        if self.readyState != "live":
            raise MediaStreamError
        loop = asyncio.get_running_loop()
        if self._wake is None:
            self._wake = asyncio.Event()
            self._loop_ref = loop
        frame: VideoFrame | None = None
        # A working device is waited for (up to STALL_S: a slow camera is not blackened); a
        # failed one gets black frames at the nominal rate.
        deadline = loop.time() + (self._black_interval if self.failed else STALL_S)
        while frame is None:
            with self._lock:
                frame, self._fresh = (self._newest if self._fresh else None), False
            if frame is not None:
                break
            self._wake.clear()
            remaining = deadline - loop.time()
            if remaining <= 0:
                break
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), remaining)
        if frame is None:  # nothing new in time (failed or stalled device): black
            frame = _black(*self._size)
        if self._start is None:
            self._start = time.monotonic()
        frame.pts = int((time.monotonic() - self._start) * VIDEO_CLOCK_RATE)
        frame.time_base = VIDEO_TIME_BASE
        return frame

    def _notify(self) -> None:
        loop, wake = self._loop_ref, self._wake
        if loop is not None and wake is not None and not loop.is_closed():
            with contextlib.suppress(RuntimeError):  # the loop closed meanwhile
                loop.call_soon_threadsafe(wake.set)

    def stop(self) -> None:
        super().stop()
        self._stop.set()


def _black(width: int, height: int) -> VideoFrame:
    frame = VideoFrame(width=width, height=height, format="yuv420p")
    for plane, value in zip(frame.planes, (16, 128, 128), strict=True):
        plane.update(bytes([value]) * plane.buffer_size)
    return frame

"""Camera capture through OpenCV with a real source it can open -- a generated video file read
by ``cv2.VideoCapture`` (this machine has no camera) -- and the fallbacks when no device
exists or a source fails."""

from __future__ import annotations

import asyncio
import itertools
import threading
from typing import ClassVar

import numpy as np
import pytest

from app.rtc import capture
from app.rtc.capture import OpenCVCameraTrack, cameras, microphones, open_camera
from app.rtc.tracks import Stamp, SyntheticVideoTrack, ToneAudioTrack, draw_stamp, read_frame_stamp
from tests.unit.rtc.test_call_loopback import wait_for

cv2 = pytest.importorskip("cv2")
FILE_TAG = 77
FRAMES = 24


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    return make_clip(tmp_path_factory.mktemp("camera") / "clip.avi")


def make_clip(path):
    """A 24-frame MJPEG clip whose frames carry our machine-readable stamp (seq = index)."""
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 30, (320, 240))
    assert writer.isOpened()
    for index in range(FRAMES):
        gray = np.full((240, 320), 90, np.uint8)
        draw_stamp(gray, Stamp(FILE_TAG, index, 1_000 + index))
        writer.write(cv2.cvtColor(gray, cv2.COLOR_GRAY2BGR))
    writer.release()
    return path


async def test_a_video_source_is_read_in_its_own_thread_frame_by_frame_and_looped(clip):
    track = open_camera(f"file:{clip}")
    assert isinstance(track, OpenCVCameraTrack)
    try:
        seqs, pts = [], []
        for _ in range(2 * FRAMES):
            frame = await asyncio.wait_for(track.recv(), 2)
            stamp = read_frame_stamp(frame)
            assert stamp is not None and stamp.tag == FILE_TAG  # the file's own pixels
            seqs.append(stamp.seq)
            pts.append(frame.pts)
        assert (frame.width, frame.height) == (320, 240)
        assert frame.format.name == "yuv420p"  # converted in the reader: no consumer converts
        # Each captured frame is handed out at most once, in order (a slow reader gets the
        # newest, skipping stale ones); the file loops at its end.
        assert seqs[0] < FRAMES // 2  # from the start (a busy machine may skip one or two)
        steps = [b - a for a, b in itertools.pairwise(seqs)]
        wraps = [i for i, step in enumerate(steps) if step < 0]
        assert len(wraps) >= 1 and all(step > 0 for step in steps if step >= 0)
        assert all(seqs[i] > seqs[i + 1] for i in wraps)
        assert len(set(seqs[:wraps[0] + 1])) == wraps[0] + 1  # no frame twice before the wrap
        assert pts == sorted(pts) and len(set(pts)) == len(pts)
        assert track.reader_thread.is_alive()
        assert track.reader_thread is not threading.current_thread()
    finally:
        track.stop()
    track.reader_thread.join(2)
    assert not track.reader_thread.is_alive()


async def test_a_source_that_fails_sends_black_frames_of_its_size(clip):
    track = OpenCVCameraTrack(str(clip), loop=False, fps=30)  # ends after 24 frames
    try:
        await wait_for(lambda: track.failed, 5)
        await asyncio.wait_for(track.recv(), 2)  # the last frame read, not yet handed out
        frames = [await asyncio.wait_for(track.recv(), 2) for _ in range(5)]
        for frame in frames:
            assert (frame.width, frame.height) == (320, 240)
            assert float(frame.to_ndarray(format="gray").mean()) < 20  # black
    finally:
        track.stop()


def test_no_device_falls_back_to_the_test_pattern_and_the_tone(tmp_path, monkeypatch):
    assert isinstance(open_camera("cv:97"), SyntheticVideoTrack)  # no such device here
    assert isinstance(open_camera(f"file:{tmp_path / 'missing.avi'}"), SyntheticVideoTrack)
    assert isinstance(open_camera("synthetic"), SyntheticVideoTrack)
    assert isinstance(capture.open_microphone("tone"), ToneAudioTrack)
    found = cameras()
    assert found[-1].key == "synthetic"
    assert [d.key for d in microphones()] == ["tone"]
    monkeypatch.setattr(capture, "cv2", None)  # a build without opencv
    assert [d.key for d in cameras()] == ["synthetic"]
    assert isinstance(open_camera(f"file:{tmp_path}"), SyntheticVideoTrack)


async def test_the_camera_is_what_the_other_side_decodes(clip, devices, wire):
    """The file 'camera' through a real aiortc call: the peer decodes the file's stamps."""
    alice, bob = devices[:2]
    ca = wire.call_for(alice, video=lambda: open_camera(f"file:{clip}"))
    cb = wire.call_for(bob)
    try:
        await ca.connect(bob.party, offerer=True)
        await wait_for(lambda: alice.party in cb.links
                       and cb.links[alice.party].stats.stamped_frames >= 15)
        assert cb.links[alice.party].stats.tags == {FILE_TAG}
    finally:
        await ca.hangup()
        await cb.hangup()


class FakeInputStream:
    """A stand-in for PortAudio's input stream (this machine has no microphone): on start()
    its own thread calls back with 20 ms blocks of a 440 Hz tone, as PortAudio would."""

    instances: ClassVar[list] = []

    def __init__(self, *, device, samplerate, channels, dtype, blocksize, callback) -> None:
        assert (samplerate, channels, dtype, blocksize) == (48_000, 1, "int16", 960)
        self.device, self.callback = device, callback
        self.running = threading.Event()
        self.closed = False
        self.sent = 0
        FakeInputStream.instances.append(self)

    def start(self) -> None:
        self.running.set()
        threading.Thread(target=self._run, daemon=True).start()

    def _run(self) -> None:
        while self.running.is_set() and self.sent < 200:
            t = (np.arange(960) + self.sent * 960) / 48_000
            block = (np.sin(2 * np.pi * 440 * t) * 9000).astype(np.int16).reshape(-1, 1)
            self.callback(block, 960, None, None)
            self.sent += 1
            threading.Event().wait(0.02)

    def stop(self) -> None:
        self.running.clear()

    def close(self) -> None:
        self.closed = True


async def test_a_microphone_is_read_from_portaudio_callbacks():
    track = capture.open_microphone("sd:3", stream_factory=FakeInputStream)
    assert isinstance(track, capture.MicrophoneTrack)
    stream = FakeInputStream.instances[-1]
    assert stream.device == 3
    try:
        frames = [await asyncio.wait_for(track.recv(), 2) for _ in range(25)]
    finally:
        track.stop()
    assert stream.closed and not stream.running.is_set()
    assert all(f.samples == 960 and f.sample_rate == 48_000 and f.format.name == "s16"
               for f in frames)
    assert [f.pts for f in frames] == [i * 960 for i in range(25)]
    pcm = np.concatenate([f.to_ndarray().reshape(-1) for f in frames]).astype(float)
    peak_hz = np.argmax(np.abs(np.fft.rfft(pcm))) * 48_000 / len(pcm)
    assert abs(peak_hz - 440) < 5  # the device's samples, not silence


async def test_a_stalled_microphone_gives_silence_and_none_here_gives_the_tone():
    class Silent(FakeInputStream):
        def start(self) -> None:  # opens, but never calls back
            pass

    track = capture.open_microphone("sd:0", stream_factory=Silent)
    try:
        frame = await asyncio.wait_for(track.recv(), 3)
        assert frame.samples == 960 and not frame.to_ndarray().any()
    finally:
        track.stop()
    # This machine: PortAudio (if installed) finds no input device; the tone stands in.
    assert [d.key for d in microphones()][-1] == "tone"
    assert isinstance(capture.open_microphone("sd:0"), ToneAudioTrack)
    assert isinstance(capture.open_microphone("tone"), ToneAudioTrack)

"""Progress and results of transfers, as plain frozen snapshots the GUI can observe."""

from __future__ import annotations

import collections
import time
from collections.abc import Callable
from dataclasses import dataclass

from app.services.transfers.descriptor import AttachmentDescriptor

# Phases a snapshot reports (the row's states, app/storage/transfers.py).
PREPARING = "preparing"  # upload: a first encryption pass for the digest; nothing sent yet
UPLOADING = "uploading"
DOWNLOADING = "downloading"
VERIFYING = "verifying"  # download: digest check, then into the encrypted file store
PAUSED = "paused"  # not running (dropped connection, or the app restarted): resumable
DONE, FAILED, CANCELLED = "done", "failed", "cancelled"


@dataclass(frozen=True, slots=True)
class TransferProgress:
    """One transfer at one moment. ``bytes_*`` count the current phase's bytes (plaintext
    while preparing, ciphertext on the wire otherwise); ``speed_bps`` is over the last few
    seconds; ``eta_s`` is None while unknown. ``error_message`` is safe to show."""

    transfer_id: str
    direction: str  # "upload" | "download"
    phase: str
    room_id: str
    bytes_done: int
    bytes_total: int
    chunks_done: int
    chunk_count: int
    speed_bps: float = 0.0
    eta_s: float | None = None
    resumed_bytes: int = 0  # bytes already done when this run started (resume)
    error_code: str = ""
    error_message: str = ""

    @property
    def fraction(self) -> float:
        return self.bytes_done / self.bytes_total if self.bytes_total else 1.0

    @property
    def final(self) -> bool:
        return self.phase in (DONE, FAILED, CANCELLED)


@dataclass(frozen=True, slots=True)
class TransferResult:
    """A finished transfer: an upload's signed descriptor (send it in the room), or a
    download's file id in the encrypted file store."""

    transfer_id: str
    direction: str
    room_id: str
    descriptor: AttachmentDescriptor | None = None
    file_id: str | None = None
    error_code: str = ""
    error_message: str = ""

    @property
    def ok(self) -> bool:
        return not self.error_code


class RateMeter:
    """Bytes per second over a sliding window, and the time left at that speed."""

    def __init__(self, *, window_s: float = 3.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._window = window_s
        self._clock = clock
        self._samples: collections.deque[tuple[float, int]] = collections.deque()

    def reset(self, done: int) -> None:
        self._samples.clear()
        self._samples.append((self._clock(), done))

    def add(self, done: int) -> None:
        now = self._clock()
        self._samples.append((now, done))
        while len(self._samples) > 2 and now - self._samples[1][0] >= self._window:
            self._samples.popleft()

    def speed(self) -> float:
        if len(self._samples) < 2:
            return 0.0
        (t0, b0), (t1, b1) = self._samples[0], self._samples[-1]
        return (b1 - b0) / (t1 - t0) if t1 > t0 else 0.0

    def eta(self, remaining: int) -> float | None:
        speed = self.speed()
        if remaining <= 0:
            return 0.0
        return remaining / speed if speed > 0 else None

"""What a running transfer needs: the chunk worker threads and the live run state."""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any, TypeVar

from app.core.errors import SafeConsultError
from app.services.transfers.errors import TransferCancelled
from app.services.transfers.progress import RateMeter, TransferProgress
from app.storage.transfers import TransferRecord

if TYPE_CHECKING:
    from app.services.transfers.engine import TransferEngine

T = TypeVar("T")

# Chunk work (encryption, hashing, file I/O) runs on a few dedicated threads rather than the
# loop's default executor: fewer threads means fewer malloc arenas holding freed chunk
# buffers, which keeps the resident size of a long transfer flat.
_WORKERS = 4
_executor: concurrent.futures.ThreadPoolExecutor | None = None


def _chunk_executor() -> concurrent.futures.ThreadPoolExecutor:
    global _executor
    if _executor is None:
        _executor = concurrent.futures.ThreadPoolExecutor(_WORKERS, "sc-transfer")
    return _executor


async def in_thread(func: Callable[..., T], *args: Any) -> T:
    """Run ``func`` in a worker thread. If the caller is cancelled, wait for the thread to
    finish before re-raising: it may be writing to a file descriptor the caller will close."""
    future = asyncio.get_running_loop().run_in_executor(_chunk_executor(), func, *args)
    try:
        return await asyncio.shield(future)
    except asyncio.CancelledError:
        with contextlib.suppress(BaseException):
            await future
        raise


class Run:
    """The live state of one running transfer."""

    def __init__(self, engine: TransferEngine, record: TransferRecord) -> None:
        self.engine = engine
        self.record = record
        self.transfer_id = record.transfer_id
        self.phase = record.state
        self.bytes_total = 0
        self.bytes_done = 0
        self.resumed = 0
        self.done: set[int] = set()
        self.cancel_requested = False
        self.task: asyncio.Task[Any] | None = None
        self.meter = RateMeter(clock=engine._clock)
        self.last_emit = 0.0
        self.last_commit = engine._clock()

    def start_phase(self, phase: str, total: int, done: Iterable[int] = (),
                    size_of: Callable[[int], int] | None = None) -> None:
        self.phase = phase
        self.done = set(done)
        self.bytes_total = total
        self.bytes_done = sum(size_of(i) for i in self.done) if size_of else 0
        self.resumed = self.bytes_done
        self.meter.reset(self.bytes_done)
        self.engine._emit(self, force=True)

    def advance(self, nbytes: int, index: int | None = None) -> None:
        if index is not None:
            self.done.add(index)
        self.bytes_done += nbytes
        self.meter.add(self.bytes_done)
        now = self.engine._clock()
        if index is not None and now - self.last_commit >= self.engine.options.commit_interval_s:
            self.commit()
        self.engine._emit(self)

    def commit(self) -> None:
        try:
            self.engine._repo.update(self.transfer_id, done=self.done)
        except KeyError:  # the row is gone: retention removed this transfer's message
            self.cancel_requested = True
            raise TransferCancelled("removed by retention") from None
        self.last_commit = self.engine._clock()

    def check(self) -> None:
        if self.cancel_requested:
            raise TransferCancelled("cancelled by the user")

    def snapshot(self, phase: str | None = None, error: SafeConsultError | None = None,
                 ) -> TransferProgress:
        rec = self.record
        return TransferProgress(
            transfer_id=self.transfer_id, direction=rec.direction, phase=phase or self.phase,
            room_id=rec.room_id, bytes_done=self.bytes_done, bytes_total=self.bytes_total,
            chunks_done=len(self.done), chunk_count=rec.chunk_count,
            speed_bps=self.meter.speed(), eta_s=self.meter.eta(self.bytes_total - self.bytes_done),
            resumed_bytes=self.resumed, error_code=error_code(error) if error else "",
            error_message=error.user_message if error else "",
        )


def error_code(exc: BaseException) -> str:
    return getattr(exc, "code", "") if isinstance(getattr(exc, "code", None), str) else (
        exc.__class__.__name__)

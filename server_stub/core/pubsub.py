"""In-process fan-out from request handlers to connected WebSockets.

All subscriber bookkeeping lives on the event loop thread; routes running in the thread
pool hand their messages over with ``call_soon_threadsafe``, so no lock is needed and a
publish never blocks a request on a slow socket. A message is serialised once and the same
text goes to every recipient. Each connection has a bounded queue: a device that stops
reading is disconnected instead of growing the server's memory, and catches up by sync.

A push to a socket that has nothing waiting is written at once, synchronously, by the
socket's ``writer`` (as a bare ``websockets.broadcast`` does): waking one task per socket
per event cost as much CPU as the TLS write itself, and with 50 recipients it set the
relay's latency tail. Only when the socket is busy (its task holds frames it has not
finished writing, or TCP pushes back) does the push queue up behind them, so each socket
still sees its pushes in the order they were made. Several events fanned out together
(a stored burst) leave as one frame per socket.

Signaling messages are never written to the database: if the recipient device is not
connected, they wait here for a short time-to-live, then are dropped.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

CLOSE = object()  # queue sentinel: the connection should close
# A pushed frame carries at most this many JSON objects (newline-separated) and, unless one
# object alone is larger, at most this many characters (clients read frames up to 1 MiB).
MAX_FRAME_OBJECTS = 64
MAX_FRAME_CHARS = 256 * 1024


def frames_of(texts: list[str]) -> Iterator[str]:
    """``texts`` (one JSON object each) joined into as few frames as the bounds allow."""
    start, size = 0, 0
    for i, text in enumerate(texts):
        if i > start and (i - start >= MAX_FRAME_OBJECTS or size + len(text) > MAX_FRAME_CHARS):
            yield "\n".join(texts[start:i])
            start, size = i, 0
        size += len(text) + 1
    if start < len(texts):
        yield "\n".join(texts[start:])


@dataclass(eq=False)
class Subscriber:
    user_id: str
    device_id: str
    session_id: str
    queue: asyncio.Queue
    close_code: int = 1000
    close_reason: str = ""
    closed: bool = False
    # Writes a frame to the socket now; False if it cannot (TCP back-pressure, closing).
    # Set by the socket's task once its opening frames are out; None: always queue.
    writer: Callable[[str], bool] | None = None
    busy: bool = False  # the socket's task holds frames it has not finished writing


@dataclass
class _Pending:
    expires: float
    text: str


@dataclass
class HubStats:
    published: int = 0
    delivered: int = 0
    written_direct: int = 0  # of delivered: written at once, not queued
    dropped_slow: int = 0
    signals_held: int = 0
    signals_expired: int = 0


class Hub:
    def __init__(self, *, queue_limit: int = 1024, signal_ttl_s: float = 30.0,
                 max_held_signals: int = 256) -> None:
        self.queue_limit = queue_limit
        self.signal_ttl_s = signal_ttl_s
        self.max_held_signals = max_held_signals
        self.stats = HubStats()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._by_device: dict[str, set[Subscriber]] = {}
        self._by_user: dict[str, set[str]] = {}
        self._held: dict[str, deque[_Pending]] = {}
        # Bumped by every subscribe: the relay watch scans again when a socket joins.
        self.generation = 0

    # -- loop-thread API -------------------------------------------------------------------

    def bind(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop

    def subscribe(self, user_id: str, device_id: str, session_id: str = "") -> Subscriber:
        self._loop = asyncio.get_running_loop()
        sub = Subscriber(user_id, device_id, session_id, asyncio.Queue(self.queue_limit))
        self.generation += 1
        self._by_device.setdefault(device_id, set()).add(sub)
        self._by_user.setdefault(user_id, set()).add(device_id)
        for pending in self._take_held(device_id):
            self._put(sub, pending)
        return sub

    def unsubscribe(self, sub: Subscriber) -> None:
        sub.closed = True
        subs = self._by_device.get(sub.device_id)
        if subs is None:
            return
        subs.discard(sub)
        if not subs:
            del self._by_device[sub.device_id]
            devices = self._by_user.get(sub.user_id)
            if devices is not None:
                devices.discard(sub.device_id)
                if not devices:
                    del self._by_user[sub.user_id]

    def subscribers(self) -> list[Subscriber]:
        """A snapshot of every live connection."""
        return [sub for subs in self._by_device.values() for sub in subs]

    def is_connected(self, device_id: str) -> bool:
        return bool(self._by_device.get(device_id))

    def send_to_users(self, user_ids: Iterable[str], text: str) -> int:
        self.stats.published += 1
        sent = 0
        for user_id in set(user_ids):
            for device_id in tuple(self._by_user.get(user_id, ())):
                sent += self.send_to_device(device_id, text, count=False)
        return sent

    def send_to_device(self, device_id: str, text: str, *, count: bool = True) -> int:
        if count:
            self.stats.published += 1
        subs = tuple(self._by_device.get(device_id, ()))
        for sub in subs:
            self._put(sub, text)
        return len(subs)

    def hold_or_send(self, device_id: str, text: str) -> bool:
        """Deliver a signaling message now, or keep it for ``signal_ttl_s``. True if sent."""
        if self.send_to_device(device_id, text):
            return True
        held = self._held.setdefault(device_id, deque(maxlen=self.max_held_signals))
        held.append(_Pending(time.monotonic() + self.signal_ttl_s, text))
        self.stats.signals_held += 1
        return False

    def expire_held(self) -> None:
        now = time.monotonic()
        for device_id in list(self._held):
            queue = self._held[device_id]
            while queue and queue[0].expires <= now:
                queue.popleft()
                self.stats.signals_expired += 1
            if not queue:
                del self._held[device_id]

    def send_to_device_sub(self, sub: Subscriber, text: str) -> None:
        """A reply to one connection (e.g. pong), queued behind its pushes."""
        self._put(sub, text)

    def close_sub(self, sub: Subscriber, code: int, reason: str) -> None:
        self._close(sub, code, reason)

    def disconnect_device(self, device_id: str, code: int, reason: str) -> None:
        for sub in tuple(self._by_device.get(device_id, ())):
            self._close(sub, code, reason)

    # -- any-thread API --------------------------------------------------------------------

    def publish_to_users(self, user_ids: Iterable[str], text: str) -> None:
        """Thread-safe: push ``text`` to every connected device of these users."""
        self._dispatch(self.send_to_users, tuple(user_ids), text)

    def publish_batch(self, items: list[tuple[list[str], str]]) -> None:
        """Thread-safe: several (users, text) pushes in one hand-over, kept in order."""
        self._dispatch(self._send_batch, items)

    def _send_batch(self, items: list[tuple[list[str], str]]) -> None:
        if len(items) == 1:
            self.send_to_users(*items[0])
            return
        # Several events (a stored burst): each socket gets its share, in order, in as few
        # frames as possible -- one TLS record and one syscall instead of one per event.
        shares: dict[Subscriber, list[str]] = {}
        for user_ids, text in items:
            self.stats.published += 1
            for user_id in set(user_ids):
                for device_id in tuple(self._by_user.get(user_id, ())):
                    for sub in self._by_device.get(device_id, ()):
                        shares.setdefault(sub, []).append(text)
        for sub, texts in shares.items():
            for frame in frames_of(texts):
                self._put(sub, frame)

    def publish_to_devices(self, device_ids: Iterable[str], text: str) -> None:
        """Thread-safe: push ``text`` to these devices if connected."""
        for device_id in tuple(device_ids):
            self._dispatch(self.send_to_device, device_id, text)

    def _dispatch(self, fn, *args) -> None:
        loop = self._loop
        if loop is None or loop.is_closed():
            return  # nobody has ever connected: nothing to push
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is loop:
            # Queued, not run now: a thread's hand-over queued before this one (an earlier
            # event, say) must be delivered first.
            loop.call_soon(fn, *args)
        else:
            # From a thread-pool route: the loop owns the subscriber tables.
            loop.call_soon_threadsafe(fn, *args)

    # -- internals -------------------------------------------------------------------------

    def _take_held(self, device_id: str) -> list[str]:
        queue = self._held.pop(device_id, None)
        if not queue:
            return []
        now = time.monotonic()
        return [p.text for p in queue if p.expires > now]

    def _put(self, sub: Subscriber, text: str) -> None:
        if sub.closed:
            return
        if sub.writer is not None and not sub.busy and sub.queue.empty():
            # Nothing waits for this socket: write now, no task switch (order is kept,
            # since anything earlier has been written).
            try:
                written = sub.writer(text)
            except Exception:  # its task meets the error and closes the socket
                written = False
            if written:
                self.stats.delivered += 1
                self.stats.written_direct += 1
                return
        try:
            sub.queue.put_nowait(text)
            self.stats.delivered += 1
        except asyncio.QueueFull:
            self.stats.dropped_slow += 1
            self._close(sub, 1013, "slow_consumer")

    def _close(self, sub: Subscriber, code: int, reason: str) -> None:
        if sub.closed:
            return
        sub.close_code, sub.close_reason = code, reason
        self.unsubscribe(sub)
        # Make room for the sentinel: the queued messages are not needed once closing.
        while True:
            try:
                sub.queue.put_nowait(CLOSE)
                return
            except asyncio.QueueFull:
                sub.queue.get_nowait()

"""Group commit for the relay's acknowledgements: a reply that says "stored" leaves only
once what it acknowledges is on disk, without making anything else wait for the disk.

The relay's connections commit with ``synchronous=NORMAL`` (``core/db.py``): a commit
returns before its write-ahead log pages reach the disk, so a power cut could take back an
event already pushed and acknowledged -- the sender would have dropped it from its outbox.
:class:`AckGate` holds such replies (the push socket's ``sent``), runs one fsync of the log
in a worker thread for all of them, and releases them in the order they were queued. While
that fsync runs, the event loop stores and pushes the next events; replies queued meanwhile
wait for the next fsync, so under load one fsync serves a whole burst.

The fsyncs are also spaced (``min_interval_s``, the ``relay_ack_sync_interval_s`` setting):
the event loop's own commits write to the same log, and a write that meets an fsync in
progress can wait for it -- measured on this machine, fsyncing the log back to back held
1-in-100 commits for milliseconds, and a commit on the loop thread holds every push.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from server_stub.core.db import Database

log = logging.getLogger("server_stub.relay")

Released = Callable[[bool], None]  # called with True once on disk, False if the sync failed


class AckGate:
    """Loop-thread object: ``after_sync(callback)`` calls ``callback(True)`` once every
    transaction committed before the call is on disk (``callback(False)`` if the fsync
    failed: nothing may be acknowledged then). Callbacks run in the order queued."""

    def __init__(self, db: Database, *, min_interval_s: float = 0.05) -> None:
        self.db = db
        self.min_interval_s = min_interval_s
        self.syncs = 0
        self._last_start = float("-inf")
        self._waiting: list[Released] = []
        self._task: asyncio.Task | None = None

    def after_sync(self, callback: Released) -> None:
        self._waiting.append(callback)
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run())

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            while self._waiting:
                wait = self._last_start + self.min_interval_s - loop.time()
                if wait > 0:
                    await asyncio.sleep(wait)
                # Everything queued so far was committed before this fsync starts.
                batch, self._waiting = self._waiting, []
                self._last_start = loop.time()
                try:
                    await loop.run_in_executor(None, self.db.sync_wal)
                    ok = True
                except OSError as exc:
                    log.error("syncing the event log failed: %s", exc.__class__.__name__)
                    ok = False
                self.syncs += 1
                for callback in batch:
                    callback(ok)
        finally:
            self._task = None

"""A cancelled upload leaves nothing on the server: real devices through the real server
over TLS, the engine, the blob API and the server's blob store unmocked.

* Cancelled while it runs, or while paused: its blob is deleted on the server (rows, chunk
  files), audited once as ``blob.delete``.
* The server out of reach (a TCP edge that refuses connections), or answering nothing: the
  cancel still completes at once, nothing is raised, and the blob stays for the server's
  retention; the failed delete is logged without patient data.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from pathlib import Path

import pytest

from app.core.errors import ServerError
from app.net import blob_api, relay_api
from app.net.transport import Transport
from app.services.transfers import (
    TransferCancelled,
    TransferInterrupted,
    TransferOptions,
)
from tests.integration import test_transfer
from tests.integration.test_transfer import CHUNK, Peer
from tests.integration.test_transfer_resume import DroppingProxy, _proxied_engine
from tests.support.clients import new_user_device, server_db

trio = test_transfer.trio  # fixture

NAME = "cancel-me.bin"


def _blob_state(server, blob_id: str) -> tuple[int, list[str]]:
    """(rows for the blob, chunk files on disk)."""
    rows = server_db(server).connection().execute(
        "SELECT COUNT(*) FROM blobs WHERE blob_id = ?", (blob_id,)).fetchone()[0]
    directory = server.settings.blob_dir / blob_id
    return rows, sorted(p.name for p in directory.iterdir()) if directory.exists() else []


def _delete_audits(server, blob_id: str) -> int:
    return server_db(server).connection().execute(
        "SELECT COUNT(*) FROM audit_log WHERE action = 'blob.delete' AND object_id = ?",
        (blob_id,)).fetchone()[0]


async def _gone(server, peer: Peer, blob_id: str) -> None:
    assert _blob_state(server, blob_id) == (0, [])
    with pytest.raises(ServerError) as refused:
        await blob_api.blob_status(peer.device.transport, blob_id)
    assert (refused.value.status, refused.value.code) == (403, "not_member")
    assert _delete_audits(server, blob_id) == 1


def _source(tmp_path: Path, chunks: int) -> Path:
    source = tmp_path / NAME
    source.write_bytes(os.urandom(chunks * CHUNK))
    return source


async def test_an_upload_cancelled_midway_leaves_nothing_on_the_server(trio, open_server,
                                                                       tmp_path):
    alice, _bob, _eve, room_id = trio
    alice.engine.options = TransferOptions(chunk_size=CHUNK, parallel=1, progress_interval_s=0,
                                           commit_interval_s=0)
    seen: list = []

    def cancel_midway(p) -> None:
        if p.phase == "uploading" and p.chunks_done >= 3 and not seen:
            seen.append(p)
            alice.engine.cancel(p.transfer_id)

    alice.engine.progress.connect(cancel_midway)
    with pytest.raises(TransferCancelled):
        await alice.engine.upload(room_id, _source(tmp_path, 12))
    blob_id = alice.engine.record(seen[0].transfer_id).blob_id
    assert blob_id is not None
    await alice.engine.drain()
    await _gone(open_server, alice, blob_id)
    (snapshot,) = alice.engine.transfers()
    assert snapshot.phase == "cancelled"
    # Once: a second cancel of the ended transfer deletes (and audits) nothing more.
    alice.engine.cancel(seen[0].transfer_id)
    await alice.engine.drain()
    assert _delete_audits(open_server, blob_id) == 1


async def test_a_paused_upload_cancelled_later_leaves_nothing(trio, open_server, tmp_path):
    """Not running (paused by ``stop``, as at sign-out): the cancel ends it at once and its
    blob goes in the background."""
    alice, _bob, _eve, room_id = trio
    alice.engine.options = TransferOptions(chunk_size=CHUNK, parallel=1, progress_interval_s=0,
                                           commit_interval_s=0)
    stopping: list = []

    def stop_midway(p) -> None:
        if p.phase == "uploading" and p.chunks_done >= 2 and not stopping:
            stopping.append(asyncio.ensure_future(alice.engine.stop()))

    alice.engine.progress.connect(stop_midway)
    task = asyncio.ensure_future(alice.engine.upload(room_id, _source(tmp_path, 10)))
    with pytest.raises(asyncio.CancelledError):
        await task
    await stopping[0]
    (record,) = alice.engine.pending()
    rows, chunks = _blob_state(open_server, record.blob_id)
    assert rows == 1 and len(chunks) >= 2
    alice.engine.cancel(record.transfer_id)
    await alice.engine.drain()
    await _gone(open_server, alice, record.blob_id)


async def test_cancel_while_the_server_is_out_of_reach_completes_and_keeps_the_blob(
        open_server, tmp_path, caplog):
    _c, dev = await new_user_device(open_server, "dr.cutoff")
    room_id = await relay_api.create_room(dev.transport)
    proxy = DroppingProxy(open_server.port)
    port = await proxy.start()
    engine, cache, transport = await _proxied_engine(dev, open_server, port, tmp_path / "dev",
                                                     max_retries=1000, parallel=1)
    cut: list = []

    def out_of_reach(p) -> None:
        # The network goes away mid-upload; the engine retries (it would for a long time) ...
        if p.phase == "uploading" and p.chunks_done >= 2 and not cut:
            cut.append(p)
            proxy.refusing = True
            proxy.drop_all()

    engine.progress.connect(out_of_reach)
    try:
        task = asyncio.ensure_future(engine.upload(room_id, _source(tmp_path, 40)))
        async with asyncio.timeout(10):
            while not cut:
                await asyncio.sleep(0.01)
        await asyncio.sleep(0.2)  # a few failed retries
        assert not task.done()
        caplog.set_level(logging.INFO, logger="app.services.transfers.engine")
        # ... until the user cancels it: that ends it at once, whatever the delete does.
        engine.cancel(cut[0].transfer_id)
        async with asyncio.timeout(5):
            with pytest.raises(TransferCancelled):
                await task
        async with asyncio.timeout(5):
            await engine.drain()  # the delete failed quietly: nothing raised
        (snapshot,) = engine.transfers()
        assert snapshot.phase == "cancelled"
        blob_id = engine.record(cut[0].transfer_id).blob_id
        rows, chunks = _blob_state(open_server, blob_id)
        assert rows == 1 and len(chunks) >= 2  # left to the server's retention
        assert _delete_audits(open_server, blob_id) == 0
        failed = [r for r in caplog.records if getattr(r, "event", "") == "blob_delete_failed"]
        assert [r.reason_code for r in failed] == ["connection"]
        assert all(blob_id not in r.getMessage() and NAME not in r.getMessage()
                   for r in caplog.records)
    finally:
        await proxy.close()
        await transport.aclose()
        cache.close()
        await dev.aclose()


async def test_a_server_that_never_answers_does_not_hold_the_cancel(open_server, tmp_path):
    """The delete is bounded (``delete_timeout_s``); the cancel never waits for it."""
    _c, dev = await new_user_device(open_server, "dr.silent")
    room_id = await relay_api.create_room(dev.transport)
    proxy = DroppingProxy(open_server.port)
    port = await proxy.start()
    engine, cache, transport = await _proxied_engine(dev, open_server, port, tmp_path / "dev",
                                                     max_retries=0, parallel=1,
                                                     delete_timeout_s=0.5)
    silent_conns: list = []

    async def silent(reader, writer) -> None:  # accepts, reads, never answers
        silent_conns.append(writer)
        while await reader.read(65536):
            pass

    black_hole = await asyncio.start_server(silent, "127.0.0.1", 0)
    silent_port = black_hole.sockets[0].getsockname()[1]
    silent_transport = Transport(f"https://127.0.0.1:{silent_port}", open_server.ca_pem,
                                 signer=transport.signer, timeout_s=30)
    try:
        def drop(p) -> None:
            if p.phase == "uploading" and p.chunks_done >= 1 and not proxy.refusing:
                proxy.refusing = True
                proxy.drop_all()

        engine.progress.connect(drop)
        with pytest.raises(TransferInterrupted):
            await engine.upload(room_id, _source(tmp_path, 3 * 128 * 1024 // CHUNK))
        (record,) = engine.pending()
        engine._transport = silent_transport  # the server now swallows every request
        started = time.monotonic()
        engine.cancel(record.transfer_id)
        assert time.monotonic() - started < 0.5
        async with asyncio.timeout(5):
            await engine.drain()
        assert time.monotonic() - started < 3
        assert silent_conns  # the delete was tried, and given up
        rows, chunks = _blob_state(open_server, record.blob_id)
        assert rows == 1 and chunks
        assert engine.pending() == []
    finally:
        black_hole.close()
        for writer in silent_conns:
            writer.transport.abort()
        await black_hole.wait_closed()
        await silent_transport.aclose()
        await proxy.close()
        await transport.aclose()
        cache.close()
        await dev.aclose()

"""Sending does not wait for the disk (docs/e2ee.md, "Durability"): a message's commit -- the
outbox row, the local echo and the advanced Megolm session -- is not fsynced before the POST.

* A killed process loses none of it (SQLite's WAL is in the OS's page cache): proved with a
  real SIGKILL of a second process.
* A power cut may lose the last such commits, so the outbound Megolm session can come back
  one index behind what receivers have already seen; reusing that index would be a replay
  to them. After any unclean shutdown the chat rotates every room's outbound session
  instead. The power cut is simulated by putting the cache's files back as they were at the
  last fsync; the test checks that the session really came back behind, and that the next
  message is read by the receiver, not rejected.
"""

from __future__ import annotations

import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from app.security.keystore import KeyringKeyStore
from app.services.chat import ChatService
from app.storage.cache import DB_NAME, Cache
from app.storage.chat_state import ChatState
from app.storage.crypto_store import SqlCryptoStore
from tests.integration.test_chat import new_client, room_with
from tests.unit.security.file_keyring import FileTestKeyring

CHILD = """
import os, signal, sys
from pathlib import Path
from app.security.keystore import KeyringKeyStore
from app.storage.cache import Cache
from app.storage.chat_state import ChatState
from tests.unit.security.file_keyring import FileTestKeyring

directory, keyring_path = sys.argv[1:3]
keys = KeyringKeyStore.open("u1", "d1", backend=FileTestKeyring(Path(keyring_path)),
                            allow_test_backend=True)
cache = Cache.open(Path(directory), keys)
state = ChatState(cache)
with cache.write():  # the session's first write: durable
    state.put("durable", "1")
with cache.write(durable=False):
    state.put("not-durable", "2")
os.kill(os.getpid(), signal.SIGKILL)
"""


def test_a_killed_process_keeps_its_non_durable_commits(tmp_path):
    keyring_path = tmp_path / "keyring.json"
    directory = tmp_path / "cache"
    child = subprocess.run([sys.executable, "-c", CHILD, str(directory), str(keyring_path)],
                           capture_output=True, text=True, timeout=60,
                           cwd=Path(__file__).parents[2])
    assert child.returncode == -signal.SIGKILL, child.stderr
    keys = KeyringKeyStore.open("u1", "d1", backend=FileTestKeyring(keyring_path),
                                allow_test_backend=True)
    with Cache.open(directory, keys) as cache:
        assert not cache.closed_cleanly  # so a chat on it rotates its room keys
        state = ChatState(cache)
        assert (state.get("durable"), state.get("not-durable")) == ("1", "2")
    with Cache.open(directory, keys) as cache:
        assert cache.closed_cleanly


def _crash(client, directory: Path) -> None:
    """The process dies: no stop(), no clean close -- its file handles just go away."""
    client.chat._session.changed.disconnect(client.chat._on_session)
    client.ws.session.cache._conn.close()


@pytest.mark.parametrize("power_cut", [False, True], ids=["crash", "power-cut"])
async def test_after_an_unclean_shutdown_the_next_message_is_read_not_rejected(
        open_server, tmp_path, power_cut):
    alice = await new_client(open_server, tmp_path, f"dr.alice.cut{int(power_cut)}")
    bob = await new_client(open_server, tmp_path, f"dr.bob.cut{int(power_cut)}")
    try:
        room_id = await room_with(alice, bob)
        await alice.chat.send_text(room_id, "before")
        cache = alice.ws.session.cache
        directory = cache.directory
        cache.sync()  # the disk as a power cut would leave it: everything up to here
        saved = tmp_path / "at-last-fsync"
        saved.mkdir()
        for suffix in ("", "-wal"):
            shutil.copy2(directory / f"{DB_NAME}{suffix}", saved / f"{DB_NAME}{suffix}")
        before = alice.chat.store.outbound_group(room_id)
        assert before is not None and before.message_count == 1

        await alice.chat.send_text(room_id, "posted, then the power went")
        await bob.chat.sync_once()
        assert bob.texts(room_id) == ["before", "posted, then the power went"]

        _crash(alice, directory)
        if power_cut:
            (directory / f"{DB_NAME}-shm").unlink(missing_ok=True)
            for suffix in ("", "-wal"):
                shutil.copy2(saved / f"{DB_NAME}{suffix}", directory / f"{DB_NAME}{suffix}")
        keys = alice.ws.keystore_for(alice.creds.username, alice.ws.session.device.device_id)
        reopened = Cache.open(directory, keys)
        assert not reopened.closed_cleanly
        kept = SqlCryptoStore(reopened).outbound_group(room_id)
        if power_cut:
            # The hazard is real: the session is back one index behind what bob has seen.
            assert kept is not None and kept.session_id == before.session_id
            assert kept.message_count == before.message_count
        else:
            assert kept is not None and kept.message_count == before.message_count + 1

        alice.ws.session.cache = reopened
        alice.chat = ChatService(alice.ws.session)
        await alice.chat.start(background=False)
        await alice.chat.send_text(room_id, "after the restart")
        await bob.chat.sync_once()
        assert bob.chat.undecrypted(room_id) == []  # nothing rejected as a replay
        assert bob.texts(room_id) == ["before", "posted, then the power went",
                                      "after the restart"]
        assert alice.chat.store.outbound_group(room_id).session_id != before.session_id
        # Alice's own view catches up from the relay (the power cut lost her local echo).
        await alice.chat.sync_once()
        assert alice.texts(room_id) == bob.texts(room_id)
    finally:
        await alice.close()
        await bob.close()

"""At-least-once across a real crash: a second process records audit entries with the
server out of reach and is SIGKILLed right after; the next session sends them, in order,
after the ones already on the server -- no gap, no duplicate. The key store is a file-backed
test keyring, so the killed process and the survivor share it as they would the OS one."""

import json
import signal
import subprocess
import sys
from pathlib import Path

from app.services.audit import AuditService
from app.storage.cache import Cache
from tests.integration.test_sign_in import sign_in
from tests.support.clients import create_user, server_db
from tests.unit.security.file_keyring import FileTestKeyring

CHILD = """
import os, signal, sys
from pathlib import Path
from app.config import Paths
from app.security.device_binding import DeviceBindings
from app.security.keystore import KeyringKeyStore
from app.services.audit import AuditService
from app.storage.cache import Cache
from tests.unit.security.file_keyring import FileTestKeyring

root, keyring_path, username, directory = sys.argv[1:5]
backend = FileTestKeyring(Path(keyring_path))
def keystore_for(user, device):
    return KeyringKeyStore.open(user, device, backend=backend, allow_test_backend=True)
device = DeviceBindings(Paths.under(Path(root)), keystore_for).load(username)
cache = Cache.open(Path(directory), keystore_for(device.username, device.device_id))
audit = AuditService(cache, device.identity.sign, device_id=device.device_id)
for n in range(3, 6):
    audit.record("file.export", object_type="file", object_id=f"f-{n}", detail={"n": n})
os.kill(os.getpid(), signal.SIGKILL)
"""


async def test_entries_of_a_killed_process_are_sent_by_the_next_session(
    open_server, open_workstation, tmp_path,
):
    keyring_path = tmp_path / "keyring.json"
    ws = open_workstation("dr.kill", keyring=FileTestKeyring(keyring_path))
    await sign_in(ws, create_user(open_server, "dr.kill"))
    session = ws.session
    device = session.device
    audit = session.audit  # the session's own: the one audit call
    audit.record("session.lock", detail={"n": 1})
    audit.record("session.unlock", detail={"n": 2})
    assert await audit.flush() == 2
    directory = session.cache.directory
    await session._close_cache()  # this process lets go; the next one takes the cache

    child = subprocess.run(
        [sys.executable, "-c", CHILD, str(ws.paths.data.parent), str(keyring_path),
         device.username, str(directory)],
        capture_output=True, text=True, timeout=60, cwd=Path(__file__).parents[2])
    assert child.returncode == -signal.SIGKILL, child.stderr

    keystore = ws.keystore_for(device.username, device.device_id)
    with Cache.open(directory, keystore) as cache:
        assert cache.full_check_ran  # the killed process never closed it
        after = AuditService(cache, device.identity.sign, device_id=device.device_id,
                             transport=session.transport)
        assert after.pending == 3
        assert after.verify(device.identity.ed25519).ok
        assert await after.flush() == 3
    rows = server_db(open_server).connection().execute(
        "SELECT detail FROM audit_log WHERE device_id = ? AND action LIKE 'client.%' "
        "ORDER BY seq", (device.device_id,)).fetchall()
    details = [json.loads(r[0]) for r in rows]
    assert [d["device_seq"] for d in details] == [1, 2, 3, 4, 5]
    assert [d["n"] for d in details] == [1, 2, 3, 4, 5]
    # Linked across the two processes: entry 3's predecessor is entry 2 as the server has it.
    assert details[2]["prev_hash"] == details[1]["entry_hash"]
    await session.aclose()

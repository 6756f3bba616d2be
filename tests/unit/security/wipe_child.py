"""Child process for the wipe crash tests: ``python -m tests.unit.security.wipe_child``.

Modes: ``setup ROOT`` fills a data directory for two users; ``wipe ROOT STEP`` wipes and
SIGKILLs itself right after STEP (0: never); ``resume ROOT`` is a restart: it finishes a
pending wipe and prints the report as JSON.
"""

from __future__ import annotations

import io
import json
import os
import signal
import sys
from pathlib import Path

from app.config import Paths
from app.core.messages import CachedMessage
from app.core.phi import Phi
from app.security.keystore import KeyringKeyStore
from app.security.wiper import Wiper, resume_pending_wipe
from app.storage.cache import Cache, cache_dir
from app.storage.files import EncryptedFileStore
from app.storage.messages import MessageRepository
from tests.unit.security.file_keyring import FileTestKeyring

OWNERS = [("alice", "DEV1"), ("bob", "DEV1")]
MARKER = "WIPE-MARKER-8812"


def keystore_for(root: Path):
    backend = FileTestKeyring(root / "keyring.json")
    return lambda user, device: KeyringKeyStore.open(
        user, device, backend=backend, allow_test_backend=True,
    )


def setup(root: Path) -> None:
    paths = Paths.under(root)
    ks = keystore_for(root)
    for user, device in OWNERS:
        directory = cache_dir(paths.data, user, device)
        # Fixture data only: memory security would just make the set-up slower.
        with Cache.open(directory, ks(user, device), memory_security=False) as cache:
            MessageRepository(cache).insert_many(
                CachedMessage("!r", f"$e{i}", "@s", i, Phi(f"{MARKER} {user} {i}"))
                for i in range(200)
            )
            data = (MARKER + " file ").encode() * 5000
            EncryptedFileStore(cache).put(io.BytesIO(data), len(data))
        ks(user, device).set_token("refresh-token-" + user)
        ks(user, device).pickle_key()


def wipe(root: Path, kill_after: int) -> None:
    def hook(step):
        if step == kill_after:
            os.kill(os.getpid(), signal.SIGKILL)

    report = Wiper(Paths.under(root), keystore_for(root), on_step=hook).wipe("remote", OWNERS)
    print(json.dumps({"complete": report.complete}))


def resume(root: Path) -> None:
    report = resume_pending_wipe(Paths.under(root), keystore_for(root))
    print(json.dumps(None if report is None else {
        "complete": report.complete, "resumed": report.resumed,
        "key_stores": report.key_stores_destroyed, "files": report.files_deleted,
    }))


if __name__ == "__main__":
    mode, root = sys.argv[1], Path(sys.argv[2])
    if mode == "setup":
        setup(root)
    elif mode == "wipe":
        wipe(root, int(sys.argv[3]))
    else:
        resume(root)

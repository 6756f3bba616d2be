"""Kiosk (shared cart) mode: nothing of a session survives it.

* The cache key lives in memory only (:class:`~app.security.keystore.MemoryKeyStore`), so
  whatever a crash or a power cut leaves in the data directory is ciphertext without a key.
* :func:`cleanup_leftovers` runs at start, before login, and removes all of it.
* After logout, :func:`attest_clean` checks that the data directory holds nothing -- in
  particular no SQLite database in the clear -- and returns report bytes for the caller to
  sign with the device key and send as the "nothing left" attestation.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
import time
from pathlib import Path

from app.config import Paths
from app.security.erase import EraseResult, erase_tree_contents
from app.security.keystore import MemoryKeyStore

SQLITE_HEADER = b"SQLite format 3\x00"
ATTESTATION_KIND = "safeconsult.kiosk.clean.v1"


class KioskKeyStores:
    """(user, device) -> the one in-memory key store of that pair in this process.

    One per pair, not a new one per call: the session asks for the key store several times
    (cache key, pickle key, token) and must get the same keys each time.
    """

    def __init__(self) -> None:
        self._stores: dict[tuple[str, str], MemoryKeyStore] = {}
        self._lock = threading.Lock()

    def __call__(self, user_id: str, device_id: str) -> MemoryKeyStore:
        with self._lock:
            store = self._stores.get((user_id, device_id))
            if store is None:
                store = self._stores[(user_id, device_id)] = MemoryKeyStore(user_id, device_id)
            return store

    def destroy_all(self) -> int:
        """Crypto-erase every kiosk key of this process (logout)."""
        with self._lock:
            stores, self._stores = list(self._stores.values()), {}
        for store in stores:
            store.destroy()
        return len(stores)


# The kiosk's keys live in this process's memory by definition, so the registry is the
# process's: a crash or power cut takes it, and logout_cleanup() empties it.
_PROCESS_KEYS = KioskKeyStores()


def session_keys(user_id: str, device_id: str) -> MemoryKeyStore:
    """The kiosk key store of (user, device): memory only, the same one for the process."""
    return _PROCESS_KEYS(user_id, device_id)


def cleanup_leftovers(paths: Paths) -> EraseResult:
    """Remove everything in the data directory (left by a crash, or by the last logout)."""
    paths.data.mkdir(parents=True, exist_ok=True, mode=0o700)
    return erase_tree_contents(paths.data)


def attest_clean(
    paths: Paths, *, device_id: str = "", now_ms: int | None = None,
) -> tuple[bool, bytes]:
    """(clean, report). Clean means the data directory holds no file at all.

    The report also says what was found, so a failed attestation tells IT why: the number
    of files and bytes, how many start with a plaintext SQLite header, and a digest of the
    relative paths (not the paths: they could name a person in a directory listing).
    """
    files, total, plaintext_db = 0, 0, 0
    listing = hashlib.sha256()
    if paths.data.exists():
        for dirpath, _dirs, names in os.walk(paths.data):
            for name in sorted(names):
                path = Path(dirpath) / name
                files += 1
                listing.update(str(path.relative_to(paths.data)).encode() + b"\n")
                try:
                    total += path.lstat().st_size
                    with open(path, "rb") as handle:
                        if handle.read(len(SQLITE_HEADER)) == SQLITE_HEADER:
                            plaintext_db += 1
                except OSError:
                    plaintext_db += 1  # unreadable to us is not proof of unreadable to others
    clean = files == 0
    report = {
        "kind": ATTESTATION_KIND,
        "device_id": device_id,
        "checked_ms": now_ms if now_ms is not None else int(time.time() * 1000),
        "clean": clean,
        "files": files,
        "bytes": total,
        "plaintext_databases": plaintext_db,
        "listing_sha256": listing.hexdigest() if files else "",
    }
    return clean, json.dumps(report, sort_keys=True, separators=(",", ":")).encode()


def logout_cleanup(paths: Paths, *, device_id: str = "") -> tuple[bool, bytes]:
    """After the cache is closed at logout: drop the keys, remove everything, then attest."""
    _PROCESS_KEYS.destroy_all()
    cleanup_leftovers(paths)
    return attest_clean(paths, device_id=device_id)

"""Child process for the kiosk crash test: a kiosk session that writes marker strings into
its cache, commits, says "ready" and waits to be SIGKILLed."""

from __future__ import annotations

import io
import sys
import time
from pathlib import Path

from app.config import Paths
from app.core.messages import CachedMessage
from app.core.phi import Phi
from app.security.kiosk import cleanup_leftovers, session_keys
from app.storage.audit_queue import AuditQueueRepository
from app.storage.cache import Cache, cache_dir
from app.storage.files import EncryptedFileStore
from app.storage.messages import MessageRepository
from app.storage.secrets import SecretRepository

MARKERS = ["KIOSK-MARKER-AAA", "KIOSK-MARKER-BBB", "Müller-Lüdenscheidt-KIOSK", "张三-KIOSK-病历"]


def main(root: Path) -> None:
    paths = Paths.under(root)
    cleanup_leftovers(paths)
    keys = session_keys("nurse1", "CART7")
    cache = Cache.open(cache_dir(paths.data, "nurse1", "CART7"), keys)
    messages = MessageRepository(cache)
    for round_ in range(50):
        messages.insert_many(
            CachedMessage("!ward", f"$e{round_}-{i}", "@s", round_ * 100 + i,
                          Phi(f"{MARKERS[i % len(MARKERS)]} note {round_}-{i}"))
            for i in range(20)
        )
    SecretRepository(cache).put("note", MARKERS[0].encode())
    AuditQueueRepository(cache).enqueue("view", MARKERS[1].encode())
    blob = " ".join(MARKERS).encode() * 1000
    EncryptedFileStore(cache).put(io.BytesIO(blob), len(blob))
    assert messages.search(MARKERS[2])  # the data is really there, readable to the session
    print("ready", flush=True)
    time.sleep(120)


if __name__ == "__main__":
    main(Path(sys.argv[1]))

import json
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from app.config import Paths
from app.core.wipe import STEPS, WipeStep
from app.security.keystore import KeyringKeyStore, KeyStoreError, MemoryKeyStore
from app.security.wiper import Wiper, marker_path, resume_pending_wipe, wipe_pending
from app.storage.cache import Cache, cache_dir
from app.storage.errors import CacheKeyError
from tests.unit.security.file_keyring import FileTestKeyring
from tests.unit.security.wipe_child import MARKER, OWNERS

REPO = Path(__file__).resolve().parents[3]


def child(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "tests.unit.security.wipe_child", *args],
        cwd=REPO, capture_output=True, text=True, timeout=60, check=False,
    )


def all_bytes(root: Path) -> bytes:
    return b"".join(p.read_bytes() for p in root.rglob("*") if p.is_file())


def assert_nothing_left(root: Path) -> None:
    paths = Paths.under(root)
    assert list(paths.data.rglob("*")) == []
    assert not marker_path(paths).exists()
    assert FileTestKeyring(root / "keyring.json").entries() == []


@pytest.mark.parametrize("kill_after", [s.value for s in STEPS[:-1]])
def test_wipe_killed_after_each_step_completes_at_restart(tmp_path, kill_after):
    setup = child("setup", str(tmp_path))
    assert setup.returncode == 0, setup.stderr
    assert len(FileTestKeyring(tmp_path / "keyring.json").entries()) == 2 * 4
    assert len(list((tmp_path / "data").rglob("*.scf"))) == 2

    secrets_before = [
        json.loads((tmp_path / "keyring.json").read_text())[name]
        for name in FileTestKeyring(tmp_path / "keyring.json").entries()
    ]
    killed = child("wipe", str(tmp_path), str(kill_after))
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    assert wipe_pending(Paths.under(tmp_path))
    marker = marker_path(Paths.under(tmp_path)).read_text()
    assert json.loads(marker)["key_owners"] == [list(o) for o in OWNERS]
    assert not any(secret in marker for secret in secrets_before if len(secret) > 4)
    if kill_after >= WipeStep.KEYS_DESTROYED:
        assert FileTestKeyring(tmp_path / "keyring.json").entries() == []
    if kill_after == WipeStep.KEYS_DESTROYED:
        # Files still there, keys gone: crypto-erased already.
        user, device = OWNERS[0]
        keys = KeyringKeyStore.open(
            user, device, backend=FileTestKeyring(tmp_path / "other.json"),
            allow_test_backend=True,
        )
        with pytest.raises(CacheKeyError):
            Cache.open(cache_dir(tmp_path / "data", user, device), keys)

    restarted = child("resume", str(tmp_path))
    assert restarted.returncode == 0, restarted.stderr
    report = json.loads(restarted.stdout)
    assert report["complete"] and report["resumed"]
    assert_nothing_left(tmp_path)
    assert MARKER.encode() not in all_bytes(tmp_path)

    again = child("resume", str(tmp_path))
    assert json.loads(again.stdout) is None  # no marker: nothing to do


def test_uninterrupted_wipe(tmp_path):
    assert child("setup", str(tmp_path)).returncode == 0
    done = child("wipe", str(tmp_path), "0")
    assert json.loads(done.stdout) == {"complete": True}
    assert_nothing_left(tmp_path)


def test_keys_are_destroyed_before_any_file_is_deleted(tmp_path):
    paths = Paths.under(tmp_path)
    keys = MemoryKeyStore("alice", "DEV1")
    Cache.open(cache_dir(paths.data, "alice", "DEV1"), keys).close()
    seen = []

    def hook(step):
        files = [p for p in paths.data.rglob("*") if p.is_file()]
        seen.append((step, keys.has_cache_key(), len(files)))

    report = Wiper(paths, lambda u, d: keys, on_step=hook).wipe("remote", [("alice", "DEV1")])
    assert report.complete and report.key_stores_destroyed == 1 and report.files_deleted >= 1
    assert [s for s, _, _ in seen] == list(STEPS)
    step2 = seen[1]
    assert step2[0] is WipeStep.KEYS_DESTROYED and step2[1] is False and step2[2] >= 1
    assert report.keys_gone_s <= report.total_s


def test_key_store_failure_still_deletes_files_and_keeps_the_marker(tmp_path):
    paths = Paths.under(tmp_path)
    paths.data.mkdir(parents=True)
    (paths.data / "x.db").write_bytes(b"ciphertext")

    class Broken(MemoryKeyStore):
        def destroy(self):
            raise KeyStoreError("keyring locked")

    report = Wiper(paths, lambda u, d: Broken(u, d)).wipe("remote", [("alice", "DEV1")])
    assert not report.complete
    assert report.problems == ["key store: KeyStoreError"]
    assert list(paths.data.iterdir()) == []
    assert wipe_pending(paths)  # retried at the next start
    ok = resume_pending_wipe(paths, lambda u, d: MemoryKeyStore(u, d))
    assert ok is not None and ok.complete and not wipe_pending(paths)


def test_damaged_marker_still_wipes(tmp_path):
    paths = Paths.under(tmp_path)
    paths.data.mkdir(parents=True)
    (paths.data / "c.db").write_bytes(b"x")
    paths.config.mkdir(parents=True)
    marker_path(paths).write_bytes(b"{garbage")
    report = resume_pending_wipe(paths, lambda u, d: MemoryKeyStore(u, d))
    assert report is not None and report.files_deleted == 1
    assert list(paths.data.iterdir()) == []
    assert not report.complete  # key owners unknown: reported, marker kept for IT to see


def test_extra_files_are_deleted(tmp_path):
    paths = Paths.under(tmp_path)
    token = tmp_path / "config" / "token.bin"
    token.parent.mkdir(parents=True)
    token.write_bytes(b"t")
    report = Wiper(paths, lambda u, d: MemoryKeyStore(u, d), extra_files=[token]).wipe(
        "user", [],
    )
    assert report.complete and not token.exists() and report.files_deleted == 1

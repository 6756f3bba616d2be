import json
import signal
import subprocess
import sys
from pathlib import Path

from app.config import Paths
from app.security.kiosk import (
    SQLITE_HEADER,
    attest_clean,
    cleanup_leftovers,
    logout_cleanup,
    session_keys,
)
from tests.unit.security.kiosk_child import MARKERS

REPO = Path(__file__).resolve().parents[3]


def encodings(text: str) -> list[bytes]:
    return [text.encode("utf-8"), text.encode("utf-16-le"), text.encode("utf-16-be")]


def test_kiosk_session_killed_leaves_nothing_readable(tmp_path):
    paths = Paths.under(tmp_path)
    paths.data.mkdir(parents=True)
    (paths.data / "left-from-last-time.db").write_bytes(SQLITE_HEADER + b"old")

    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.unit.security.kiosk_child", str(tmp_path)],
        cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        line = proc.stdout.readline()
        assert line.strip() == "ready", proc.stderr.read() if proc.poll() is not None else line
        files = [p for p in tmp_path.rglob("*") if p.is_file()]
        assert any(p.name == "cache.db-wal" for p in files)  # the session really wrote
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
        proc.stdout.close()
        proc.stderr.close()
    assert proc.returncode == -signal.SIGKILL

    files = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert not (paths.data / "left-from-last-time.db").exists()  # start-up clean-up ran
    assert sum(p.stat().st_size for p in files) > 100_000
    for path in files:
        raw = path.read_bytes()
        assert SQLITE_HEADER not in raw, path.name
        for marker in MARKERS:
            for form in encodings(marker):
                assert form not in raw, (path.name, marker)
    clean, report = attest_clean(paths)
    assert not clean and json.loads(report)["plaintext_databases"] == 0

    # Next start.
    result = cleanup_leftovers(paths)
    assert result.files == len(files) and result.problems == []
    assert list(paths.data.iterdir()) == []
    clean, report = attest_clean(paths, device_id="CART7", now_ms=5)
    assert clean
    assert json.loads(report) == {
        "kind": "safeconsult.kiosk.clean.v1", "device_id": "CART7", "checked_ms": 5,
        "clean": True, "files": 0, "bytes": 0, "plaintext_databases": 0, "listing_sha256": "",
    }


def test_attest_reports_a_plaintext_database(tmp_path):
    paths = Paths.under(tmp_path)
    (paths.data / "sub").mkdir(parents=True)
    (paths.data / "sub" / "leak.sqlite").write_bytes(SQLITE_HEADER + b"x" * 10)
    (paths.data / "other.bin").write_bytes(b"\x00" * 5)
    clean, raw = attest_clean(paths)
    report = json.loads(raw)
    assert not clean
    assert report["files"] == 2 and report["plaintext_databases"] == 1 and report["bytes"] == 31
    assert "leak" not in raw.decode() and len(report["listing_sha256"]) == 64


def test_logout_cleanup_removes_and_attests(tmp_path):
    paths = Paths.under(tmp_path)
    (paths.data / "users" / "x").mkdir(parents=True)
    (paths.data / "users" / "x" / "cache.db").write_bytes(b"ciphertext")
    clean, _ = logout_cleanup(paths, device_id="CART7")
    assert clean and list(paths.data.iterdir()) == []


def test_attest_on_missing_dir_is_clean(tmp_path):
    assert attest_clean(Paths.under(tmp_path / "never"))[0]


def test_session_keys_are_one_store_per_pair_until_logout(tmp_path):
    first = session_keys("nurse9", "CART1")
    key = first.cache_key()
    first.set_token("t")
    again = session_keys("nurse9", "CART1")
    assert again is first and again.cache_key() == key and again.token() == "t"
    assert session_keys("nurse8", "CART1") is not first
    logout_cleanup(Paths.under(tmp_path), device_id="CART1")
    assert not first.has_cache_key() and first.token() is None  # crypto-erased in memory
    fresh = session_keys("nurse9", "CART1")
    assert fresh is not first and fresh.cache_key() != key

import errno
import io
import os

import pytest

from app.crypto.files import FileTampered
from app.storage.cache import Cache
from app.storage.errors import CacheDiskFull, CacheKeyError
from app.storage.files import EncryptedFileStore, FileNotCached

DATA = b"DICOM-MARKER-PIXELS " * 20_000


@pytest.mark.parametrize("suite", ["aes-256-gcm", "sm4-gcm"])
def test_put_read_delete(tmp_path, keys, suite):
    with Cache.open(tmp_path, keys) as cache:
        store = EncryptedFileStore(cache, suite=suite)
        fid = store.put(io.BytesIO(DATA), len(DATA))
        assert store.read(fid) == DATA
        assert store.ids() == [fid]
        on_disk = (tmp_path / "files" / f"{fid}.scf").read_bytes()
        assert b"DICOM-MARKER" not in on_disk
        store.delete(fid)
        assert store.ids() == []
        with pytest.raises(FileNotCached):
            store.read(fid)
        assert not list((tmp_path / "files").iterdir())


def test_files_are_unreadable_once_the_cache_key_goes(tmp_path, keys):
    with Cache.open(tmp_path, keys) as cache:
        fid = EncryptedFileStore(cache).put(io.BytesIO(DATA), len(DATA))
    keys.destroy()  # crypto-erase: the file keys were inside the cache
    with pytest.raises(CacheKeyError):
        Cache.open(tmp_path, keys)
    assert (tmp_path / "files" / f"{fid}.scf").exists()
    # Recovery drops the undecryptable files.
    with Cache.rebuild(tmp_path, keys) as cache, pytest.raises(FileNotCached):
        EncryptedFileStore(cache).read(fid)
    assert not (tmp_path / "files").exists()


def test_tampered_file_is_reported(tmp_path, keys):
    with Cache.open(tmp_path, keys) as cache:
        store = EncryptedFileStore(cache)
        fid = store.put(io.BytesIO(DATA), len(DATA))
        path = tmp_path / "files" / f"{fid}.scf"
        blob = bytearray(path.read_bytes())
        blob[len(blob) // 2] ^= 4
        path.write_bytes(bytes(blob))
        with pytest.raises(FileTampered):
            store.read(fid)


def test_failed_put_leaves_no_key_and_no_file(tmp_path, keys):
    with Cache.open(tmp_path, keys) as cache:
        store = EncryptedFileStore(cache)
        with pytest.raises(Exception, match="source ended"):
            store.put(io.BytesIO(b"short"), 100)
        assert store.ids() == []
        assert list((tmp_path / "files").iterdir()) == []


def test_remove_orphans(tmp_path, keys):
    with Cache.open(tmp_path, keys) as cache:
        store = EncryptedFileStore(cache)
        keep = store.put(io.BytesIO(b"a"), 1)
        (tmp_path / "files" / ("0" * 32 + ".scf")).write_bytes(b"orphan")
        (tmp_path / "files" / ("1" * 32 + ".part")).write_bytes(b"partial")
        assert store.remove_orphans() == 2
        assert store.read(keep) == b"a"


def test_full_disk_on_put_is_typed_and_leaves_nothing(tmp_path, keys, monkeypatch):
    def no_space(fd):
        raise OSError(errno.ENOSPC, "No space left on device")

    with Cache.open(tmp_path, keys) as cache:
        store = EncryptedFileStore(cache)
        monkeypatch.setattr(os, "fsync", no_space)
        with pytest.raises(CacheDiskFull):
            store.put(io.BytesIO(DATA), len(DATA))
        monkeypatch.undo()
        assert store.ids() == [] and list((tmp_path / "files").iterdir()) == []

"""Upload sources (app/services/transfers/sources.py): every source answers ``read_at`` with
the plaintext at that place, whatever the alignment; a stored file is read through its
decryptor and refuses damage; a changed file is noticed."""

from __future__ import annotations

import io
import os
import random

import pytest

from app.crypto.files import HEADER_SIZE, FileTampered
from app.security.keystore import MemoryKeyStore
from app.services.transfers.errors import SourceChanged, SourceGone
from app.services.transfers.sources import MemorySource, PathSource, StoredSource, stamp
from app.storage.cache import Cache
from app.storage.files import EncryptedFileStore


@pytest.fixture
def store(tmp_path):
    cache = Cache.open(tmp_path / "cache", MemoryKeyStore("u-src", "d-src"))
    yield EncryptedFileStore(cache)
    cache.close()


def _ranges(size: int, rng: random.Random) -> list[tuple[int, int]]:
    fixed = [(0, 1), (0, size), (size - 1, 10), (size, 5), (256 * 1024 - 3, 7),
             (256 * 1024, 256 * 1024), (100, 3 * 256 * 1024)]
    return fixed + [(rng.randrange(size), rng.randrange(1, 400_000)) for _ in range(40)]


def test_every_source_reads_the_same_bytes(tmp_path, store):
    data = os.urandom(3 * 256 * 1024 + 12_345)  # the store's chunks are 256 KiB
    path = tmp_path / "plain.bin"
    path.write_bytes(data)
    file_id = store.put(io.BytesIO(data), len(data))
    sources = [PathSource(str(path), stamp(path.stat())), MemorySource(data),
               StoredSource(store, file_id, None)]
    rng = random.Random(7)
    try:
        for source in sources:
            assert source.size == len(data)
        for offset, size in _ranges(len(data), rng):
            expected = data[offset:offset + size]
            for source in sources:
                assert bytes(source.read_at(size, offset)) == expected, (type(source), offset)
    finally:
        for source in sources:
            source.close()


def test_a_damaged_or_shortened_stored_file_is_refused(store):
    data = os.urandom(2 * 256 * 1024 + 10)
    file_id = store.put(io.BytesIO(data), len(data))
    sealed = store.sealed_path(file_id)
    raw = bytearray(sealed.read_bytes())
    raw[HEADER_SIZE + 256 * 1024 + 40] ^= 0x80  # in the second chunk
    sealed.write_bytes(bytes(raw))
    source = StoredSource(store, file_id, None)
    try:
        assert bytes(source.read_at(1000, 0)) == data[:1000]  # the first chunk is intact
        with pytest.raises(FileTampered):
            source.read_at(1000, 256 * 1024 + 5)
    finally:
        source.close()
    sealed.write_bytes(bytes(raw[:HEADER_SIZE + 1000]))
    source = StoredSource(store, file_id, None)
    try:
        with pytest.raises(SourceChanged):
            source.read_at(100, 0)
    finally:
        source.close()


def test_a_changed_or_missing_source_is_noticed(tmp_path, store):
    path = tmp_path / "a.bin"
    path.write_bytes(b"x" * 100)
    before = stamp(path.stat())
    path.write_bytes(b"y" * 101)
    with pytest.raises(SourceChanged):
        PathSource(str(path), before)
    file_id = store.put(io.BytesIO(b"z" * 10), 10)
    with pytest.raises(SourceChanged):
        StoredSource(store, file_id, "1:2")
    store.delete(file_id)
    with pytest.raises(SourceGone):
        StoredSource(store, file_id, None)

"""Positional reads and writes from several threads, with pread/pwrite (POSIX) and with the
locked seek fallback that Windows uses."""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor

import pytest

from app.services.transfers import fileio
from app.services.transfers.fileio import PositionalFile


@pytest.mark.parametrize("native", [True, False])
def test_parallel_positional_io(tmp_path, monkeypatch, native):
    if native and not fileio._HAS_PREAD:
        pytest.skip("no pread on this platform")
    monkeypatch.setattr(fileio, "_HAS_PREAD", native)
    blocks = [os.urandom(10_000) for _ in range(64)]
    path = tmp_path / "staging.part"
    with PositionalFile(path, write=True) as out, ThreadPoolExecutor(4) as pool:
        out.truncate(64 * 10_000)
        list(pool.map(lambda i: out.write_at(blocks[i], i * 10_000), reversed(range(64))))
    assert path.read_bytes() == b"".join(blocks)
    with PositionalFile(path) as src, ThreadPoolExecutor(4) as pool:
        got = list(pool.map(lambda i: bytes(src.read_at(10_000, i * 10_000)), range(64)))
        assert got == blocks
        assert bytes(src.read_at(50, 64 * 10_000 - 20)) == blocks[-1][-20:]  # short at EOF

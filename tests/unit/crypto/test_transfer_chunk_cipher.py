"""ChunkCipher: random-access chunks in exactly the SCF1 format of encrypt_stream."""

from __future__ import annotations

import io
import os

import pytest

from app.crypto.files import (
    HEADER_SIZE,
    ChunkCipher,
    FileTampered,
    decrypt_bytes,
    encrypt_stream,
    new_file_key,
)


@pytest.mark.parametrize("length", [0, 1, 999, 1000, 1001, 5000])
def test_chunks_match_the_stream_format(length):
    key, data = new_file_key(), os.urandom(length)
    cipher = ChunkCipher.new(key, length=length, chunk_size=1000)
    sealed = [cipher.seal(i, data[cipher.plain_offset(i):cipher.plain_offset(i)
                                  + cipher.plain_size(i)]) for i in reversed(range(cipher.count))]
    whole = cipher.header_bytes + b"".join(reversed(sealed))
    assert decrypt_bytes(whole, key) == data
    assert len(whole) - HEADER_SIZE == cipher.sealed_length
    # And the other way: what encrypt_stream writes opens chunk by chunk.
    out = io.BytesIO()
    header = encrypt_stream(io.BytesIO(data), out, key, length=length, chunk_size=1000)
    reader = ChunkCipher(header, key)
    stream = out.getvalue()[HEADER_SIZE:]
    opened = [reader.open(i, stream[reader.sealed_offset(i):reader.sealed_offset(i)
                                    + reader.sealed_size(i)]) for i in range(reader.count)]
    assert b"".join(opened) == data


def test_open_refuses_a_chunk_from_another_place():
    key = new_file_key()
    cipher = ChunkCipher.new(key, length=3000, chunk_size=1000)
    chunks = [cipher.seal(i, bytes([i]) * 1000) for i in range(3)]
    assert cipher.open(1, chunks[1]) == b"\x01" * 1000
    with pytest.raises(FileTampered):
        cipher.open(2, chunks[1])  # reordered
    other = ChunkCipher.new(key, length=3000, chunk_size=1000)  # another file, same key
    with pytest.raises(FileTampered):
        other.open(1, chunks[1])  # swapped in from another file
    with pytest.raises(FileTampered):
        cipher.open(1, chunks[1][:-1])  # truncated
    flipped = bytearray(chunks[0])
    flipped[5] ^= 1
    with pytest.raises(FileTampered):
        cipher.open(0, bytes(flipped))

import io
import tracemalloc

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from app.crypto.files import (
    HEADER_SIZE,
    TAG_SIZE,
    FileCryptoError,
    FileTampered,
    UnsupportedSuite,
    decrypt_bytes,
    decrypt_chunks,
    decrypt_stream,
    encrypt_bytes,
    encrypt_stream,
    new_file_key,
    read_header,
    suite_id,
)

SUITES = ["aes-256-gcm", "sm4-gcm"]
CHUNK = 16


@pytest.mark.parametrize("suite", SUITES)
@pytest.mark.parametrize("size", [0, 1, 15, 16, 17, 64, 100])
def test_round_trip(suite, size):
    key = new_file_key(suite)
    data = bytes(range(256))[:size] * 1
    blob = encrypt_bytes(data, key, suite=suite, chunk_size=CHUNK)
    header = read_header(io.BytesIO(blob))
    assert len(blob) == header.encrypted_size()
    assert header.chunk_count == max(1, -(-size // CHUNK))
    assert decrypt_bytes(blob, key) == data


def test_key_sizes_and_suites():
    assert len(new_file_key("aes-256-gcm")) == 32
    assert len(new_file_key("sm4-gcm")) == 16
    with pytest.raises(UnsupportedSuite):
        suite_id("des-cbc")
    with pytest.raises(FileCryptoError):
        encrypt_bytes(b"x", new_file_key("sm4-gcm"), suite="aes-256-gcm")


def test_ciphertext_hides_plaintext_and_is_randomised():
    key = new_file_key()
    data = b"PATIENT-MARKER " * 100
    a, b = encrypt_bytes(data, key), encrypt_bytes(data, key)
    assert b"PATIENT-MARKER" not in a and a != b


def test_wrong_key_is_tampered():
    blob = encrypt_bytes(b"hello", new_file_key())
    with pytest.raises(FileTampered):
        decrypt_bytes(blob, new_file_key())


def _chunks(blob: bytes) -> tuple[bytes, list[bytes]]:
    header, body = blob[:HEADER_SIZE], blob[HEADER_SIZE:]
    step = CHUNK + TAG_SIZE
    return header, [body[i : i + step] for i in range(0, len(body), step)]


def test_swapping_chunks_between_files_is_rejected():
    key = new_file_key()
    one = encrypt_bytes(b"a" * 64, key, chunk_size=CHUNK)
    two = encrypt_bytes(b"b" * 64, key, chunk_size=CHUNK)  # same key even
    h1, c1 = _chunks(one)
    _, c2 = _chunks(two)
    with pytest.raises(FileTampered):
        decrypt_bytes(h1 + c1[0] + c2[1] + c1[2] + c1[3], key)


def test_dropping_the_last_chunk_and_fixing_the_length_is_rejected():
    key = new_file_key()
    blob = encrypt_bytes(b"z" * 64, key, chunk_size=CHUNK)
    header, chunks = _chunks(blob)
    forged = bytearray(header)
    forged[9:17] = (48).to_bytes(8, "big")  # claim 3 chunks
    with pytest.raises(FileTampered):
        decrypt_bytes(bytes(forged) + b"".join(chunks[:3]), key)


@settings(max_examples=150, deadline=None)
@given(
    data=st.binary(min_size=0, max_size=80),
    suite=st.sampled_from(SUITES),
    where=st.integers(min_value=0),
    bit=st.integers(min_value=0, max_value=7),
)
def test_any_bit_flip_is_rejected(data, suite, where, bit):
    key = new_file_key(suite)
    blob = bytearray(encrypt_bytes(data, key, suite=suite, chunk_size=CHUNK))
    blob[where % len(blob)] ^= 1 << bit
    with pytest.raises(FileTampered):
        decrypt_bytes(bytes(blob), key)


@settings(max_examples=100, deadline=None)
@given(data=st.binary(min_size=0, max_size=80), cut=st.integers(min_value=1))
def test_any_truncation_is_rejected(data, cut):
    key = new_file_key()
    blob = encrypt_bytes(data, key, chunk_size=CHUNK)
    with pytest.raises(FileTampered):
        decrypt_bytes(blob[: len(blob) - 1 - (cut % len(blob))], key)


@settings(max_examples=100, deadline=None)
@given(data=st.binary(min_size=0, max_size=80), extra=st.binary(min_size=1, max_size=40))
def test_any_extension_is_rejected(data, extra):
    key = new_file_key()
    blob = encrypt_bytes(data, key, chunk_size=CHUNK)
    _, chunks = _chunks(blob)
    with pytest.raises(FileTampered):
        decrypt_bytes(blob + extra, key)
    with pytest.raises(FileTampered):
        decrypt_bytes(blob + chunks[-1], key)  # a valid chunk repeated


@settings(max_examples=100, deadline=None)
@given(
    chunks=st.integers(min_value=2, max_value=6),
    fill=st.integers(min_value=0, max_value=255),
    draw=st.data(),
)
def test_any_reorder_is_rejected(chunks, fill, draw):
    data = bytes([fill]) * (chunks * CHUNK)  # identical chunks: only the AAD tells them apart
    key = new_file_key()
    blob = encrypt_bytes(data, key, chunk_size=CHUNK)
    header, sealed = _chunks(blob)
    order = draw.draw(st.permutations(range(chunks)).filter(lambda p: list(p) != sorted(p)))
    with pytest.raises(FileTampered):
        decrypt_bytes(header + b"".join(sealed[i] for i in order), key)


def test_streaming_memory_is_bounded_by_the_chunk():
    """Streaming holds a chunk or two, never the file. Checked two ways: how far reading runs
    ahead of writing at every write (exact), and tracemalloc's peak, with a bound loose enough
    for what other threads of a full test session allocate meanwhile (still far below the
    8 MiB the whole file would take)."""
    size, chunk = 8 * 1024 * 1024, 64 * 1024

    class Zeros(io.RawIOBase):
        def __init__(self, n):
            self.left = n
            self.read_total = 0

        def readable(self):
            return True

        def readinto(self, buf):
            n = min(len(buf), self.left)
            buf[:n] = bytes(n)
            self.left -= n
            self.read_total += n
            return n

    class Counting(io.RawIOBase):
        """Counts what is read through it (the ciphertext, for decryption)."""

        def __init__(self, inner):
            self.inner, self.read_total = inner, 0

        def readable(self):
            return True

        def readinto(self, buf):
            n = self.inner.readinto(buf)
            self.read_total += n
            return n

    class Sink(io.RawIOBase):
        """Keeps what is written (optionally) and the largest read-ahead seen at a write."""

        def __init__(self, source, keep):
            self.data, self.source, self.keep = io.BytesIO(), source, keep
            self.written, self.ahead = 0, 0

        def writable(self):
            return True

        def write(self, b):
            self.written += len(b)
            self.ahead = max(self.ahead, self.source.read_total - self.written)
            return self.data.write(b) if self.keep else len(b)

    key = new_file_key()
    source = Zeros(size)
    sink = Sink(source, keep=True)
    tracemalloc.start()
    encrypt_stream(source, sink, key, length=size, chunk_size=chunk)
    _, enc_peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert sink.ahead <= 2 * chunk, sink.ahead
    sink.data.seek(0)

    encrypted = Counting(sink.data)
    out = Sink(encrypted, keep=False)
    # The encrypted bytes sit in a BytesIO already; measure only what decryption adds.
    tracemalloc.start()
    total = decrypt_stream(encrypted, out, key)
    _, dec_peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert total == size == out.written
    assert out.ahead <= 2 * (chunk + 64), out.ahead  # a chunk, its tag and the header
    assert dec_peak < size // 4, dec_peak
    # Encryption's peak includes the sink's growth; the source was never held whole.
    assert enc_peak < size * 1.5


def test_decrypt_chunks_yields_incrementally():
    key = new_file_key()
    blob = bytearray(encrypt_bytes(b"q" * 64, key, chunk_size=CHUNK))
    blob[-1] ^= 1  # damage the last chunk only
    chunks = decrypt_chunks(io.BytesIO(bytes(blob)), key)
    assert next(chunks) == b"q" * CHUNK
    with pytest.raises(FileTampered):
        list(chunks)


def test_sm4_missing_from_the_library_is_refused_clearly(monkeypatch):
    from cryptography.exceptions import UnsupportedAlgorithm

    from app.crypto import files

    def unsupported(self, nonce, data, aad):
        raise UnsupportedAlgorithm("no SM4 in this OpenSSL")

    monkeypatch.setattr(files._Sm4Gcm, "encrypt", unsupported)
    with pytest.raises(UnsupportedSuite) as info:
        new_file_key("sm4-gcm")
    assert "not available" in info.value.user_message
    assert len(new_file_key("aes-256-gcm")) == 32  # no silent switch: AES still explicit

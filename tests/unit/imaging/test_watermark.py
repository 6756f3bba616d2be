"""Watermark burn-in (numpy only): legible, on grey and RGB, never silently empty, and a
PNG writer that round-trips."""

from __future__ import annotations

import shutil
import struct
import subprocess
import zlib

import numpy as np
import pytest

from app.imaging.watermark import (
    burn_in,
    choose_scale,
    encode_png,
    printable,
    text_mask,
    upscale_for_legibility,
)

LINES = ["drhouse @ WS0042", "Exported 2026-11-22 09:30 UTC", "Patient ID SYN-0001"]


def decode_png(data: bytes) -> np.ndarray:
    """Enough of a PNG reader for what encode_png writes (8-bit, filter 0, one IDAT)."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, chunks = 8, {}
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        kind = data[pos + 4 : pos + 8]
        body = data[pos + 8 : pos + 8 + length]
        (crc,) = struct.unpack(">I", data[pos + 8 + length : pos + 12 + length])
        assert crc == zlib.crc32(kind + body) & 0xFFFFFFFF
        chunks[kind] = body
        pos += 12 + length
    cols, rows, depth, colour = struct.unpack(">IIBB", chunks[b"IHDR"][:10])
    assert depth == 8
    channels = 3 if colour == 2 else 1
    raw = np.frombuffer(zlib.decompress(chunks[b"IDAT"]), np.uint8)
    raw = raw.reshape(rows, 1 + cols * channels)
    assert (raw[:, 0] == 0).all()
    pixels = raw[:, 1:]
    return pixels.reshape(rows, cols, 3) if channels == 3 else pixels


def test_font_covers_printable_ascii_and_replaces_the_rest():
    assert printable("Zhang Wei 张伟") == "Zhang Wei ??"
    mask = text_mask("Ag")
    assert mask.shape == (18, 18) and mask.dtype == bool
    assert mask[:, :9].any() and mask[:, 9:].any()
    assert not text_mask(" ").any()
    assert text_mask("A", 3).shape == (54, 27)


def test_burn_in_grey_marks_banner_and_tiles_without_touching_the_input():
    image = np.full((512, 512), 128, np.uint8)
    out = burn_in(image, LINES)
    assert out.shape == image.shape and out.dtype == np.uint8
    assert (image == 128).all()  # a copy, not in place
    banner = out[-70:]
    assert (banner == 255).mean() > 0.05  # white letters
    assert (banner < 60).mean() > 0.5  # on a darkened band
    top = out[:400]
    assert (top != 128).mean() > 0.02  # the tiled layer reaches the image area
    assert (top != 128).mean() < 0.3  # ... without hiding it


def test_burn_in_rgb_and_black_or_white_images():
    for value in (0, 255):
        rgb = np.full((300, 400, 3), value, np.uint8)
        out = burn_in(rgb, LINES)
        assert out.shape == rgb.shape
        assert (out != value).any(axis=2).mean() > 0.02
    with pytest.raises(ValueError):
        burn_in(np.zeros((10, 10), np.uint16), LINES)


def test_scale_grows_with_the_image_and_lines_fit():
    assert choose_scale((512, 512), LINES) == 1
    assert choose_scale((3000, 2500), LINES) == 4
    assert choose_scale((100, 3000), LINES) == 1  # a flat strip: the banner must stay small
    big = burn_in(np.zeros((2400, 2400), np.uint8), LINES)
    assert (big[-300:] == 255).mean() > 0.02


def test_upscale_small_images_by_whole_factors():
    small = np.arange(64 * 48, dtype=np.uint16).reshape(64, 48).astype(np.uint8)
    big = upscale_for_legibility(small)
    assert big.shape == (512, 384)
    assert np.array_equal(big[::8, ::8], small)  # nearest neighbour: no new values
    assert upscale_for_legibility(np.zeros((600, 600), np.uint8)).shape == (600, 600)


def test_png_round_trip_grey_and_rgb():
    grey = np.random.default_rng(1).integers(0, 256, (37, 53), dtype=np.uint8)
    assert np.array_equal(decode_png(encode_png(grey)), grey)
    rgb = np.random.default_rng(2).integers(0, 256, (20, 30, 3), dtype=np.uint8)
    assert np.array_equal(decode_png(encode_png(rgb)), rgb)


@pytest.mark.skipif(shutil.which("tesseract") is None, reason="tesseract not installed")
def test_burned_watermark_is_readable_by_ocr(tmp_path):
    image = np.random.default_rng(3).integers(40, 200, (512, 512), dtype=np.uint8)
    out = burn_in(image, LINES)
    banner = out[-70:].repeat(3, axis=0).repeat(3, axis=1)
    path = tmp_path / "banner.png"
    path.write_bytes(encode_png(banner))
    text = subprocess.run(["tesseract", str(path), "-", "--psm", "6"], capture_output=True,
                          text=True, timeout=60).stdout.replace(" ", "")
    assert "drhouse" in text and "SYN-0001" in text, text

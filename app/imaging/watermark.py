"""Burn a visible watermark into exported pixels (numpy only; no Qt, no font library).

An exported or printed image carries who exported it, from which device, when, and whose
image it is, in the pixels themselves: a file passed on keeps its origin. Two layers:

* a **banner** across the bottom: a darkened band with white text, legible on any image;
* a **tiled** repeat of the first line at low opacity over the whole image, so that
  cropping the banner away still leaves the origin readable.

Text is drawn with an embedded 9 x 18 bitmap font (printable ASCII, rasterised once from
DejaVu Sans Mono Bold, whose licence allows it), scaled by whole pixels. Characters outside
printable ASCII are drawn as "?": user names, device names and patient IDs are ASCII in
practice; a full-Unicode watermark would need a font rasteriser in this layer.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Sequence

import numpy as np

_GLYPH_W, _GLYPH_H = 9, 18
_FONT_HEX = (
    "0000000000000000000000000000000000000000000000000030180c06030180c06000180c000000000000000033198c"
    "c660000000000000000000000000000000064361b3fcd86c367f990d86c0000000000000010081f1a8d0781f03c160b3"
    "58f81008000000000001c11088441c63ce704422110700000000000000001c180c020381d9bcde6e3b0fc00000000000"
    "0000030180c0600000000000000000000000000000000060603030180c06030180c0301806000000000000c030180603"
    "0180c0603018180c0c00000000000008358f87c6b04000000000000000000000000000000000c06030ff7f8603018000"
    "000000000000000000000000000000000180c060303000000000000000000000000003e1f00000000000000000000000"
    "000000000000000000180c060000000000000000006060303018180c0c060603030000000000000001c1b18cc66b3598"
    "cc6631b070000000000000000070580c06030180c06030183f00000000000000003c2180c0607030383838381fc00000"
    "00000000000f88603018700c030180c8e3c000000000000000006070782c3633118fe06030180000000000000001f8c0"
    "60301f08c030180c8c3c00000000000000001c19180c07e3198cc663118780000000000000001fc060703018180c0e06"
    "0303000000000000000003e3198cc61c1b18cc6633b8f80000000000000000f0c4633198cc63f0180c4c1c0000000000"
    "000000000000030180c00000180c06000000000000000000000000c06030000006030180c0c00000000000000000020f"
    "1e381c03c078040000000000000000000000003fdfe00003fdfe000000000000000000000000100f01e01c0e3c782000"
    "00000000000000000f08c060707030180c00030180000000000000000000f08cc6cf6db6db6db6db3cc0320f80000000"
    "0070381c0e0d86c361f0d8ee6300000000000000007e3198cc6633e18cc663319f8000000000000000078622030180c0"
    "6030080621e00000000000000007c3318cc6633198cc663331f00000000000000001fcc06030180fc6030180c07f0000"
    "0000000000007f30180c0603f180c06030180000000000000000078622030180c0673198c661f0000000000000000633"
    "198cc6633f98cc6633198c0000000000000001f830180c06030180c060307e00000000000000001f0180c06030180c06"
    "03218f800000000000000018cce6e361e0f87e3319cc66380000000000000006030180c06030180c060301fc00000000"
    "00000001dcee773b9dcfe6b3198cc663000000000000000073399ccf67b359bcde673399c0000000000000000706c633"
    "198cc6633198c6c1c00000000000000007e3398cc663339f8c060301800000000000000000706c633198cc6633198c6c"
    "1e03008000000000007e3198cc663319f0cc673198e000000000000000078c260301e07c0f0180c863e0000000000000"
    "000ff0c06030180c06030180c06000000000000000018cc6633198cc6633198cc63e000000000000000063318d86c361"
    "b0d8281c0e07000000000000000030783c1eef76ba552a9dcc6630000000000000000631b0d8381c0407038361b18c00"
    "000000000000039ccc661e0f078180c060301800000000000000007f0181c1c0c0e0606070301fc00000000000000007"
    "830180c06030180c06030180c0780000000000060100c020180c0301804030080600000000000000f0180c06030180c0"
    "6030180c060f000000000000181e19986000000000000000000000000000000000000000000000000000000000000000"
    "0000000c0300c00000000000000000000000000000000000000000000f08c063f3198cce3f0000000000000000603018"
    "0fc773198cc6633b9f800000000000000000000000f0c4c06030180621e0000000000000000030180c7e773198cc6633"
    "b8fc00000000000000000000000f08cc67f30180621e00000000000000000f0c060fe180c06030180c06000000000000"
    "000000000001f8dcc6633198c6e3f0188c3c0000000006030180fc633198cc6633198c00000000000000603018001e03"
    "0180c06030187f80000000000000180c06000780c06030180c06030180c3c000000000180c060331b0f078361b0cc670"
    "000000000000000780c06030180c06030180c03c00000000000000000000003fdb6db6db6db6db6d8000000000000000"
    "0000000fc633198cc6633198c00000000000000000000000e0d8c6633198c6c1c00000000000000000000000fc773198"
    "cc6633b9f8c0603000000000000000001f9dcc6633198cee3f0180c0600000000000000007e38180c06030180c000000"
    "000000000000000001f184c07c0f80c863e0000000000000000000c060fe180c06030180c03c00000000000000000000"
    "003198cc6633198cc63f00000000000000000000000c6771b0d86c140e070000000000000000000000060f07935d3b9d"
    "cc66300000000000000000000000ee360e070381e1b1dc0000000000000000000000318dc6c360f070180c0606070000"
    "0000000000000fe03030303030301fc00000000000000001c180c06030180c18030180c060300e0000000000c0603018"
    "0c06030180c06030180c060000000000e0180c06030180c01830180c0603070000000000000000000001c5fe8e000000"
    "00000000"
)
_FIRST, _LAST = 32, 126

_GLYPHS: np.ndarray | None = None


def _glyphs() -> np.ndarray:
    global _GLYPHS
    if _GLYPHS is None:
        count = _LAST - _FIRST + 1
        bits = np.unpackbits(np.frombuffer(bytes.fromhex("".join(_FONT_HEX)), np.uint8))
        _GLYPHS = bits[: count * _GLYPH_H * _GLYPH_W].reshape(count, _GLYPH_H, _GLYPH_W) > 0
    return _GLYPHS


def printable(text: str) -> str:
    """``text`` as the font can draw it: anything outside printable ASCII becomes "?"."""
    return "".join(c if _FIRST <= ord(c) <= _LAST else "?" for c in text)


def text_mask(text: str, scale: int = 1) -> np.ndarray:
    """A boolean (rows, cols) mask of ``text`` in the embedded font, ``scale`` x larger."""
    glyphs = _glyphs()
    codes = [ord(c) - _FIRST for c in printable(text)] or [0]
    mask = np.concatenate([glyphs[c] for c in codes], axis=1)
    if scale > 1:
        mask = mask.repeat(scale, axis=0).repeat(scale, axis=1)
    return mask


def _blend(region: np.ndarray, mask: np.ndarray, value: float, alpha: float) -> None:
    """In place: ``region`` pixels under ``mask`` move ``alpha`` of the way to ``value``."""
    if region.ndim == 3:
        mask = mask[:, :, None]
    mixed = region.astype(np.float32) * (1 - alpha) + value * alpha
    np.copyto(region, np.rint(mixed).astype(np.uint8), where=np.broadcast_to(mask, region.shape))


def _outlined(mask: np.ndarray, width: int) -> np.ndarray:
    """The mask grown by ``width`` pixels in every direction (a halo behind the letters)."""
    grown = mask.copy()
    for dy in range(-width, width + 1):
        for dx in range(-width, width + 1):
            if dy or dx:
                shifted = np.zeros_like(mask)
                ys = slice(max(dy, 0), mask.shape[0] + min(dy, 0))
                yd = slice(max(-dy, 0), mask.shape[0] + min(-dy, 0))
                xs = slice(max(dx, 0), mask.shape[1] + min(dx, 0))
                xd = slice(max(-dx, 0), mask.shape[1] + min(-dx, 0))
                shifted[ys, xs] = mask[yd, xd]
                grown |= shifted
    return grown


def choose_scale(image_shape: tuple[int, ...], lines: Sequence[str]) -> int:
    """The largest whole scale (at least 1) at which the banner's lines fit the width and
    the banner takes at most a quarter of the height; about 1 per 600 pixels of width."""
    rows, cols = image_shape[:2]
    longest = max((len(line) for line in lines), default=1) or 1
    scale = max(1, cols // 600)
    while scale > 1 and (longest * _GLYPH_W * scale > cols - 8
                         or len(lines) * _GLYPH_H * scale > rows // 4):
        scale -= 1
    return scale


def burn_in(image: np.ndarray, lines: Sequence[str], *, tile: bool = True,
            scale: int | None = None) -> np.ndarray:
    """A copy of ``image`` (uint8, grey (rows, cols) or RGB (rows, cols, 3)) with the
    watermark burned in: a banner of ``lines`` at the bottom, and the first line tiled
    faintly across the image. Lines too long for the width are cut (the banner keeps the
    start of each line, so put the most important field first)."""
    if image.dtype != np.uint8 or image.ndim not in (2, 3):
        raise ValueError("burn_in takes a uint8 grey or RGB image")
    out = np.ascontiguousarray(image).copy()
    rows, cols = out.shape[:2]
    lines = [printable(line) for line in lines if line]
    if not lines:
        return out
    s = scale or choose_scale(out.shape, lines)
    if tile:
        _tile(out, lines[0], s)
    pad = 3 * s
    line_h = _GLYPH_H * s
    band_h = min(rows, len(lines) * line_h + 2 * pad)
    band = out[rows - band_h:, :]
    _blend(band, np.ones(band.shape[:2], bool), 0.0, 0.65)
    y = rows - band_h + pad
    for line in lines:
        mask = text_mask(line, s)
        mask = mask[: max(0, min(mask.shape[0], rows - y)), : max(0, cols - 2 * pad)]
        if mask.size:
            region = out[y : y + mask.shape[0], pad : pad + mask.shape[1]]
            _blend(region, mask, 255.0, 1.0)
        y += line_h
    return out


def _tile(out: np.ndarray, text: str, scale: int) -> None:
    """The text repeated over the whole image on staggered rows, at low opacity, with a dark
    halo so it shows on bright and dark areas alike."""
    rows, cols = out.shape[:2]
    mask = text_mask(text + "   ", scale)
    halo = _outlined(mask, scale)
    h, w = mask.shape
    step_y = h * 4
    for n, y in enumerate(range(h, rows - h, step_y)):
        x0 = -((n * w) // 2) % w - w
        for x in range(x0, cols, w):
            xs, xe = max(x, 0), min(x + w, cols)
            ye = min(y + h, rows)
            if xe <= xs or ye <= y:
                continue
            m = mask[: ye - y, xs - x : xe - x]
            o = halo[: ye - y, xs - x : xe - x]
            region = out[y:ye, xs:xe]
            _blend(region, o & ~m, 0.0, 0.22)
            _blend(region, m, 255.0, 0.30)


def upscale_for_legibility(image: np.ndarray, min_side: int = 512) -> np.ndarray:
    """Small images (a 64 x 64 thumbnail, an ultrasound cine frame) are enlarged by a whole
    factor with nearest neighbour so that the watermark stays legible; pixels are not
    interpolated (no new values)."""
    factor = -(-min_side // max(1, max(image.shape[:2])))
    if factor <= 1:
        return image
    return image.repeat(factor, axis=0).repeat(factor, axis=1)


def encode_png(image: np.ndarray) -> bytes:
    """A minimal PNG encoder (8-bit grey or RGB, zlib, no filter), so that export works
    without an image library (the GUI may use Qt's writers instead)."""
    if image.dtype != np.uint8 or image.ndim not in (2, 3):
        raise ValueError("encode_png takes a uint8 grey or RGB image")
    rows, cols = image.shape[:2]
    colour = 2 if image.ndim == 3 else 0
    raw = np.ascontiguousarray(image).reshape(rows, -1)
    body = np.concatenate([np.zeros((rows, 1), np.uint8), raw], axis=1).tobytes()

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (struct.pack(">I", len(data)) + kind + data
                + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))

    header = struct.pack(">IIBBBBB", cols, rows, 8, colour, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header)
            + chunk(b"IDAT", zlib.compress(body, 6)) + chunk(b"IEND", b""))

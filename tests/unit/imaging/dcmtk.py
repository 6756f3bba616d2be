"""dcmtk as the independent reference: run dcm2pnm and read its binary PGM/PPM output."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

DCM2PNM = shutil.which("dcm2pnm")
# dcm2pnm itself reads native and RLE data; its siblings add JPEG (dcmj2pnm) and JPEG-LS
# (dcml2pnm). dcmtk has no free JPEG 2000 decoder.
TOOL_FOR_SYNTAX_PREFIX = {
    "1.2.840.10008.1.2.4.5": "dcmj2pnm", "1.2.840.10008.1.2.4.7": "dcmj2pnm",
    "1.2.840.10008.1.2.4.8": "dcml2pnm",
}


def tool_for(syntax_uid: str) -> str:
    for prefix, tool in TOOL_FOR_SYNTAX_PREFIX.items():
        if syntax_uid.startswith(prefix):
            return tool
    return "dcm2pnm"
needs_dcmtk = pytest.mark.skipif(DCM2PNM is None, reason="dcmtk (dcm2pnm) not installed")


def read_pnm(path: Path) -> np.ndarray:
    """Binary PGM (P5) or PPM (P6), maxval <= 255."""
    data = path.read_bytes()
    fields: list[bytes] = []
    pos = 0
    while len(fields) < 4:
        while data[pos : pos + 1].isspace():
            pos += 1
        if data[pos : pos + 1] == b"#":
            pos = data.index(b"\n", pos) + 1
            continue
        end = pos
        while not data[end : end + 1].isspace():
            end += 1
        fields.append(data[pos:end])
        pos = end
    pos += 1  # the single whitespace after maxval
    magic, width, height, maxval = fields[0], int(fields[1]), int(fields[2]), int(fields[3])
    assert maxval <= 255, "16-bit PNM not expected (we ask dcm2pnm for 8 bits)"
    channels = {b"P5": 1, b"P6": 3}[magic]
    arr = np.frombuffer(data, dtype=np.uint8, count=width * height * channels, offset=pos)
    return arr.reshape(height, width, channels) if channels == 3 else arr.reshape(height, width)


def dcm2pnm(src: Path, out_dir: Path, *options: str, frame: int = 1,
            tool: str = "dcm2pnm") -> np.ndarray:
    """Render ``src`` with dcm2pnm (or a sibling, 8-bit binary PNM); return the array."""
    exe = shutil.which(tool)
    assert exe is not None, tool
    out = out_dir / f"{src.stem}-{abs(hash(options)) % 10**8}-{frame}.pnm"
    subprocess.run(
        [exe, "--write-raw-pnm", "--frame", str(frame), *options, str(src), str(out)],
        check=True, capture_output=True, timeout=60,
    )
    return read_pnm(out)

"""``safeconsult --self-test``: does this installation have every part it needs?

Run by IT after deploying (and by installers/build.sh on the freshly built bundle), without a
server, a keyring or a display: each check loads a bundled native library through the module
of ours that uses it, does one real operation with it, and prints one line. Exit status 0
when every check passed; 1 otherwise, with the failed checks named on the last line.

It uses no patient data and writes only to a temporary directory that it removes. The
compressed DICOM images it decodes are synthetic (a 32 x 32 gradient) and embedded below, so
the check needs nothing from the source tree. The checks import our modules where one wraps
the library (app.storage.cache for SQLCipher, app.crypto.identity for vodozemac,
app.imaging for pydicom, app.ui for Qt); aiortc/PyAV and TUF have no such light entry point,
so they are exercised directly.
"""

from __future__ import annotations

import base64
import os
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from pathlib import Path

from app import __version__

# Synthetic compressed DICOM images (no patient data): 32 x 32 MONOCHROME2, 8 bits,
# pixel (r, c) = 4 * (r + c). Made with pydicom + pylibjpeg-openjpeg (JPEG 2000 lossless),
# pydicom (RLE lossless) and Pillow (JPEG baseline).
_DICOM_SAMPLES: dict[str, tuple[str, ...]] = {
    "jpeg2000": (
        "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
        "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAABESUNNAgAAAFVM"
        "BADQAAAAAgABAE9CAAACAAAAAAECAAIAVUkaADEuMi44NDAuMTAwMDguNS4xLjQuMS4xLjcAAgADAFVJQAAxLjIuODI2"
        "LjAuMS4zNjgwMDQzLjguNDk4LjgwMDc2MTIxMDc0MTk4MjEyNjM2MTY5NzY3NzEzODA1MzA3Mjg1AgAQAFVJFgAxLjIu"
        "ODQwLjEwMDA4LjEuMi40LjkwAgASAFVJHAAxLjIuODI2LjAuMS4zNjgwMDQzLjguNDk4LjEAAgATAFNIDgBQWURJQ09N"
        "IDMuMC4yIAgAFgBVSRoAMS4yLjg0MC4xMDAwOC41LjEuNC4xLjEuNwAIABgAVUlAADEuMi44MjYuMC4xLjM2ODAwNDMu"
        "OC40OTguODAwNzYxMjEwNzQxOTgyMTI2MzYxNjk3Njc3MTM4MDUzMDcyODUIAGAAQ1MCAE9UKAACAFVTAgABACgABABD"
        "UwwATU9OT0NIUk9NRTIgKAAQAFVTAgAgACgAEQBVUwIAIAAoAAABVVMCAAgAKAABAVVTAgAIACgAAgFVUwIABwAoAAMB"
        "VVMCAAAA4H8QAE9CAAD//////v8A4AQAAAAAAAAA/v8A4NYAAAD/T/9RACkAAAAAACAAAAAgAAAAAAAAAAAAAAAgAAAA"
        "IAAAAAAAAAAAAAEHAQH/UgAMAAAAAQAFBAQAAf9cABNAQEhIUEhIUEhIUEhIUEhIUP9kACUAAUNyZWF0ZWQgYnkgT3Bl"
        "bkpQRUcgdmVyc2lvbiAyLjUuMv+QAAoAAAAAAF0AAf+Tx9QECB/H2gUfaBAEXwRfw+oDh9QGDQIRCz2KwfOFg+cIIhoI"
        "XX8Df91RwPkDQPkDADahma5jnz2mNFsQ28B8IsB8IwBfp8eIn52sKUD/f//Z/v/d4AAAAAA="
    ),
    "rle": (
        "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
        "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAABESUNNAgAAAFVM"
        "BADOAAAAAgABAE9CAAACAAAAAAECAAIAVUkaADEuMi44NDAuMTAwMDguNS4xLjQuMS4xLjcAAgADAFVJQAAxLjIuODI2"
        "LjAuMS4zNjgwMDQzLjguNDk4LjM3MTUzMjIxMzg5NTU5NDMyMzE3MjI4NTM3NTAwNDk5NjYzNzU5AgAQAFVJFAAxLjIu"
        "ODQwLjEwMDA4LjEuMi41AAIAEgBVSRwAMS4yLjgyNi4wLjEuMzY4MDA0My44LjQ5OC4xAAIAEwBTSA4AUFlESUNPTSAz"
        "LjAuMiAIABYAVUkaADEuMi44NDAuMTAwMDguNS4xLjQuMS4xLjcACAAYAFVJQAAxLjIuODI2LjAuMS4zNjgwMDQzLjgu"
        "NDk4LjM3MTUzMjIxMzg5NTU5NDMyMzE3MjI4NTM3NTAwNDk5NjYzNzU5CABgAENTAgBPVCgAAgBVUwIAAQAoAAQAQ1MM"
        "AE1PTk9DSFJPTUUyICgAEABVUwIAIAAoABEAVVMCACAAKAAAAVVTAgAIACgAAQFVUwIACAAoAAIBVVMCAAcAKAADAVVT"
        "AgAAAOB/EABPQgAA//////7/AOAEAAAAAAAAAP7/AOBgBAAAAQAAAEAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
        "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAB8ABAgMEBQYHCAkKCwwNDg8QERITFBUWFxgZGhscHR4fB8ECAwQ"
        "FBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8gB8IDBAUGBwgJCgsMDQ4PEBESExQVFhcYGRobHB0eHyAhB8MEBQYHCAk"
        "KCwwNDg8QERITFBUWFxgZGhscHR4fICEiB8QFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8gISIjB8UGBwgJCgsMDQ4"
        "PEBESExQVFhcYGRobHB0eHyAhIiMkB8YHCAkKCwwNDg8QERITFBUWFxgZGhscHR4fICEiIyQlB8cICQoLDA0ODxAREhM"
        "UFRYXGBkaGxwdHh8gISIjJCUmB8gJCgsMDQ4PEBESExQVFhcYGRobHB0eHyAhIiMkJSYnB8kKCwwNDg8QERITFBUWFxg"
        "ZGhscHR4fICEiIyQlJicoB8oLDA0ODxAREhMUFRYXGBkaGxwdHh8gISIjJCUmJygpB8sMDQ4PEBESExQVFhcYGRobHB0"
        "eHyAhIiMkJSYnKCkqB8wNDg8QERITFBUWFxgZGhscHR4fICEiIyQlJicoKSorB80ODxAREhMUFRYXGBkaGxwdHh8gISI"
        "jJCUmJygpKissB84PEBESExQVFhcYGRobHB0eHyAhIiMkJSYnKCkqKywtB88QERITFBUWFxgZGhscHR4fICEiIyQlJic"
        "oKSorLC0uB9AREhMUFRYXGBkaGxwdHh8gISIjJCUmJygpKissLS4vB9ESExQVFhcYGRobHB0eHyAhIiMkJSYnKCkqKyw"
        "tLi8wB9ITFBUWFxgZGhscHR4fICEiIyQlJicoKSorLC0uLzAxB9MUFRYXGBkaGxwdHh8gISIjJCUmJygpKissLS4vMDE"
        "yB9QVFhcYGRobHB0eHyAhIiMkJSYnKCkqKywtLi8wMTIzB9UWFxgZGhscHR4fICEiIyQlJicoKSorLC0uLzAxMjM0B9Y"
        "XGBkaGxwdHh8gISIjJCUmJygpKissLS4vMDEyMzQ1B9cYGRobHB0eHyAhIiMkJSYnKCkqKywtLi8wMTIzNDU2B9gZGhs"
        "cHR4fICEiIyQlJicoKSorLC0uLzAxMjM0NTY3B9kaGxwdHh8gISIjJCUmJygpKissLS4vMDEyMzQ1Njc4B9obHB0eHyA"
        "hIiMkJSYnKCkqKywtLi8wMTIzNDU2Nzg5B9scHR4fICEiIyQlJicoKSorLC0uLzAxMjM0NTY3ODk6B9wdHh8gISIjJCU"
        "mJygpKissLS4vMDEyMzQ1Njc4OTo7B90eHyAhIiMkJSYnKCkqKywtLi8wMTIzNDU2Nzg5Ojs8B94fICEiIyQlJicoKSo"
        "rLC0uLzAxMjM0NTY3ODk6Ozw9B98gISIjJCUmJygpKissLS4vMDEyMzQ1Njc4OTo7PD0+P7/3eAAAAAA"
    ),
    "jpeg": (
        "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
        "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAABESUNNAgAAAFVM"
        "BACYAAAAAgABAE9CAAACAAAAAAECAAIAVUkaADEuMi44NDAuMTAwMDguNS4xLjQuMS4xLjcAAgADAFVJCAAxLjIuMy40"
        "AAIAEABVSRYAMS4yLjg0MC4xMDAwOC4xLjIuNC41MAIAEgBVSRwAMS4yLjgyNi4wLjEuMzY4MDA0My44LjQ5OC4xAAIA"
        "EwBTSA4AUFlESUNPTSAzLjAuMiAIABYAVUkaADEuMi44NDAuMTAwMDguNS4xLjQuMS4xLjcACAAYAFVJCAAxLjIuMy40"
        "AAgAYABDUwIAT1QoAAIAVVMCAAEAKAAEAENTDABNT05PQ0hST01FMiAoABAAVVMCACAAKAARAFVTAgAgACgAAAFVUwIA"
        "CAAoAAEBVVMCAAgAKAACAVVTAgAHACgAAwFVUwIAAAAoABAhQ1MCADAx4H8QAE9CAAD//////v8A4AQAAAAAAAAA/v8A"
        "4BICAAD/2P/gABBKRklGAAEBAAABAAEAAP/bAEMAAgEBAQEBAgEBAQICAgICBAMCAgICBQQEAwQGBQYGBgUGBgYHCQgG"
        "BwkHBgYICwgJCgoKCgoGCAsMCwoMCQoKCv/AAAsIACAAIAEBEQD/xAAfAAABBQEBAQEBAQAAAAAAAAAAAQIDBAUGBwgJ"
        "Cgv/xAC1EAACAQMDAgQDBQUEBAAAAX0BAgMABBEFEiExQQYTUWEHInEUMoGRoQgjQrHBFVLR8CQzYnKCCQoWFxgZGiUm"
        "JygpKjQ1Njc4OTpDREVGR0hJSlNUVVZXWFlaY2RlZmdoaWpzdHV2d3h5eoOEhYaHiImKkpOUlZaXmJmaoqOkpaanqKmq"
        "srO0tba3uLm6wsPExcbHyMnK0tPU1dbX2Nna4eLj5OXm5+jp6vHy8/T19vf4+fr/2gAIAQEAAD8A/G/4bfDb/V/6P6dq"
        "+gPht8Nv9X/o/p2r6A+G3w2/1f8Ao/p2r6A+G3w2/wBX/o/p2r8//ht8Nv8AV/6P6dq+gPht8Nv9X/o/p2r6A+G3w2/1"
        "f+j+navoD4bfDb/V/wCj+navz/8Aht8Nv9X/AKP6dq+gPht8Nv8AV/6P6dq+gPht8Nv9X/o/p2r6A+G3w2/1f+j+navz"
        "/wDht8Nv9X/o/p2r6A+G3w2/1f8Ao/p2r6A+G3w2/wBX/o/p2r6A+G3w2/1f+j+nav/ZAP7/3eAAAAAA"
    ),}
_LOSSLESS = {"jpeg2000", "rle"}


class CheckFailed(Exception):
    pass


def _expected_pixels():
    import numpy as np

    return (np.add.outer(np.arange(32), np.arange(32)) * 4).astype(np.uint8)


def check_qt(work: Path) -> str:
    """Qt with the offscreen platform: the sign-in view (with the Chinese catalogue, so the
    compiled .qm is there) rendered and grabbed; the window icon loads."""
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from PySide6.QtGui import QIcon
    from PySide6.QtWidgets import QApplication

    from app.ui.asyncbridge import TaskRunner
    from app.ui.i18n import LanguageSwitcher
    from app.ui.login_view import LoginView

    app = QApplication.instance() or QApplication([sys.argv[0], "-style", "Fusion"])
    if not LanguageSwitcher(app).apply("zh_CN"):
        raise CheckFailed("the zh_CN translation catalogue (.qm) is missing")

    async def no_sign_in(_server: str, _user: str, _secret: str) -> None:
        return None

    view = LoginView(no_sign_in, TaskRunner(app), "https://self-test.invalid")
    view.resize(480, 360)
    view.show()
    app.processEvents()
    image = view.grab().toImage()
    view.close()
    if image.isNull() or image.width() < 100 or image.height() < 100:
        raise CheckFailed("the window did not render")
    colours = {image.pixel(x, y) for x in range(0, image.width(), 7)
               for y in range(0, image.height(), 7)}
    if len(colours) < 3:
        raise CheckFailed("the rendered window is blank")
    png = work / "window.png"
    if not image.save(str(png), "PNG") or png.stat().st_size == 0:
        raise CheckFailed("the PNG image plugin could not write the capture")
    icon = _icon_path()
    if icon is None or QIcon(str(icon)).isNull():
        raise CheckFailed("the application icon is missing")
    platform = app.platformName()
    return f"{platform} platform, window {image.width()}x{image.height()} rendered, zh_CN catalogue"


def _icon_path() -> Path | None:
    here = Path(__file__).resolve().parent.parent
    for candidate in (here / "resources" / "icons" / "safeconsult.svg",
                      Path(getattr(sys, "_MEIPASS", here)) / "resources" / "icons"
                      / "safeconsult.svg"):
        if candidate.exists():
            return candidate
    return None


def check_cryptography(work: Path) -> str:
    """cryptography's OpenSSL: AES-256-GCM round trip and an Ed25519 signature."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    key = AESGCM.generate_key(bit_length=256)
    nonce = os.urandom(12)
    sealed = AESGCM(key).encrypt(nonce, b"self-test", b"aad")
    if AESGCM(key).decrypt(nonce, sealed, b"aad") != b"self-test":
        raise CheckFailed("AES-GCM round trip failed")
    signer = Ed25519PrivateKey.generate()
    signer.public_key().verify(signer.sign(b"self-test"), b"self-test")
    from cryptography.hazmat.backends.openssl import backend

    return f"AES-256-GCM and Ed25519 ({backend.openssl_version_text()})"


class _Keys:
    """A throw-away cache key (what the OS keyring holds in real use)."""

    def __init__(self) -> None:
        self._key = b""
        self._generation = 0

    def cache_key(self) -> bytes:
        return self._key

    def new_cache_key(self) -> bytes:
        self._key = os.urandom(32)
        return self._key

    def generation(self) -> int:
        return self._generation

    def set_generation(self, value: int) -> None:
        self._generation = value


def check_sqlcipher(work: Path) -> str:
    """A keyed SQLCipher cache in a temporary directory: migrate, write a row, read it back
    after reopening with the key, and check the file on disk is not plain SQLite."""
    from app.core.messages import CachedMessage
    from app.core.phi import Phi
    from app.storage.cache import DB_NAME, Cache
    from app.storage.messages import MessageRepository

    keys = _Keys()
    directory = work / "cache"
    cache = Cache.open(directory, keys)
    try:
        MessageRepository(cache).insert(
            CachedMessage("!selftest", "$1", "@selftest", 1, Phi("self-test row")))
        cipher_version = cache.fetchall("PRAGMA cipher_version")[0][0]
    finally:
        cache.close()
    cache = Cache.open(directory, keys)
    try:
        rows = MessageRepository(cache).list_room("!selftest")
    finally:
        cache.close()
    if len(rows) != 1 or rows[0].body.reveal() != "self-test row":
        raise CheckFailed("the row written was not read back")
    if (directory / DB_NAME).read_bytes()[:16] == b"SQLite format 3\x00":
        raise CheckFailed("the cache file is not encrypted")
    return f"SQLCipher {cipher_version}: keyed cache written, reopened and read"


def check_vodozemac(work: Path) -> str:
    """vodozemac: a device identity signs, the signature verifies, the account pickles."""
    from app.crypto.identity import DeviceIdentity, verify_ed25519

    identity = DeviceIdentity.generate()
    if not verify_ed25519(identity.ed25519, b"self-test", identity.sign(b"self-test")):
        raise CheckFailed("an Ed25519 signature of the device identity did not verify")
    key = os.urandom(32)
    again = DeviceIdentity.unpickle(identity.device_id, identity.pickle(key), key)
    if again.ed25519 != identity.ed25519:
        raise CheckFailed("the account did not survive pickling")
    return "device identity: sign, verify, pickle"


def check_aiortc(work: Path) -> str:
    """aiortc and PyAV: a peer connection makes an SDP offer with audio and video; libvpx
    encodes a frame."""
    import asyncio
    import fractions

    import av
    from aiortc import RTCPeerConnection
    from aiortc.codecs.vpx import Vp8Encoder

    async def offer() -> str:
        pc = RTCPeerConnection()
        try:
            pc.addTransceiver("audio")
            pc.addTransceiver("video")
            return (await pc.createOffer()).sdp
        finally:
            await pc.close()

    sdp = asyncio.run(offer())
    if "m=audio" not in sdp or "m=video" not in sdp or "a=fingerprint" not in sdp:
        raise CheckFailed("the SDP offer lacks media or a DTLS fingerprint")
    frame = av.VideoFrame(width=64, height=48, format="yuv420p")
    for plane in frame.planes:
        plane.update(bytes(plane.buffer_size))
    frame.pts, frame.time_base = 0, fractions.Fraction(1, 90000)
    payloads, _ = Vp8Encoder().encode(frame)
    if not payloads:
        raise CheckFailed("VP8 encoded nothing")
    return f"SDP offer with DTLS fingerprint; VP8 frame encoded (PyAV {av.__version__})"


def check_dicom(work: Path) -> str:
    """pydicom with the pylibjpeg plugins (found through their entry points): JPEG 2000
    (openjpeg), JPEG baseline (libjpeg) and RLE images decoded through app.imaging."""
    import numpy as np
    from pylibjpeg.utils import get_pixel_data_decoders

    from app.imaging.decode import decode_frame, transfer_syntax
    from app.imaging.load import read_dataset

    plugins = get_pixel_data_decoders()
    needed = {"1.2.840.10008.1.2.4.90": "openjpeg", "1.2.840.10008.1.2.4.50": "libjpeg",
              "1.2.840.10008.1.2.5": "rle"}
    missing = [name for uid, name in needed.items() if uid not in plugins]
    if missing:
        raise CheckFailed(f"pylibjpeg decoder plugins not registered: {', '.join(missing)}")
    expected = _expected_pixels()
    decoded = []
    for name, chunks in _DICOM_SAMPLES.items():
        ds = read_dataset(base64.b64decode("".join(chunks)))
        pixels = decode_frame(ds)
        if pixels.shape != expected.shape:
            raise CheckFailed(f"{name}: decoded shape {pixels.shape}")
        error = np.abs(pixels.astype(np.int16) - expected.astype(np.int16))
        if (error.max() if name in _LOSSLESS else error.mean()) > (0 if name in _LOSSLESS
                                                                  else 4):
            raise CheckFailed(f"{name}: decoded pixels differ from the original")
        decoded.append(f"{name} ({transfer_syntax(ds).name})")
    return "decoded " + ", ".join(decoded)


def check_updates(work: Path) -> str:
    """python-tuf for verified updates: the update service loads, and root metadata signed
    with a new Ed25519 key verifies (and stops verifying when changed)."""
    import tuf
    from securesystemslib.signer import CryptoSigner
    from tuf.api.exceptions import UnsignedMetadataError
    from tuf.api.metadata import Metadata, Root

    from app.services import updates

    signer = CryptoSigner.generate_ed25519()
    root = Metadata(Root())
    root.signed.add_key(signer.public_key, "root")
    root.sign(signer)
    again = Metadata.from_bytes(root.to_bytes())
    again.verify_delegate("root", again)
    again.signed.version += 1
    try:
        again.verify_delegate("root", again)
    except UnsignedMetadataError:
        pass
    else:
        raise CheckFailed("changed metadata still verified")
    return f"python-tuf {tuf.__version__}: signed metadata verifies; {updates.__name__} loaded"


CHECKS: tuple[tuple[str, Callable[[Path], str]], ...] = (
    ("qt", check_qt),
    ("cryptography", check_cryptography),
    ("sqlcipher", check_sqlcipher),
    ("vodozemac", check_vodozemac),
    ("aiortc", check_aiortc),
    ("dicom", check_dicom),
    ("updates", check_updates),
)


def run(argv: list[str] | None = None, *, out=None) -> int:
    """Run every check (or those named in ``argv``); print one line each; 0 if all passed."""
    out = out or sys.stdout
    wanted = set(argv or ())
    unknown = wanted - {name for name, _ in CHECKS}
    if unknown:
        print(f"self-test: unknown check(s): {', '.join(sorted(unknown))}", file=out)
        return 2
    frozen = " (bundle)" if getattr(sys, "frozen", False) else ""
    print(f"SafeConsult {__version__} self-test{frozen}", file=out, flush=True)
    failed: list[str] = []
    with tempfile.TemporaryDirectory(prefix="safeconsult-selftest-") as work:
        for name, check in CHECKS:
            if wanted and name not in wanted:
                continue
            started = time.perf_counter()
            try:
                detail = check(Path(work))
            except Exception as exc:  # every failure is reported, none stops the others
                failed.append(name)
                reason = str(exc) if isinstance(exc, CheckFailed) else (
                    f"{type(exc).__name__}: {exc}")
                print(f"FAIL {name}: {reason}", file=out, flush=True)
                if os.environ.get("SAFECONSULT_SELFTEST_TRACE"):
                    traceback.print_exc(file=out)
                continue
            ms = (time.perf_counter() - started) * 1000
            print(f"ok   {name}: {detail} [{ms:.0f} ms]", file=out, flush=True)
    if failed:
        print(f"self-test FAILED: {', '.join(failed)}", file=out, flush=True)
        return 1
    print("self-test passed", file=out, flush=True)
    return 0


def main(argv: list[str] | None = None) -> int:
    return run(sys.argv[1:] if argv is None else argv)


if __name__ == "__main__":
    raise SystemExit(main())

"""Release manifests: what a signed release contains, and the check that it still does.

A release (an installer directory or a single file such as a ``.deb``) is described by a
manifest -- JSON ``{"format", "version", "files": [{"path", "size", "sha256"}]}``, paths
relative and POSIX, sorted -- and a detached Ed25519 signature over the manifest's exact
bytes. :func:`verify_release` checks the signature with the key the verifier holds, then
recomputes every file's digest, and names the first file that changed, is missing or was
added.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from app import __version__
from app.security.policy_signing import decode_public_key, key_fingerprint

MANIFEST_FORMAT = "safeconsult-release-manifest/1"
SIGNATURE_FORMAT = "safeconsult-release-signature/1"
_CHUNK = 1 << 20


@dataclass(frozen=True)
class Report:
    """The outcome of :func:`verify_release`. ``message`` is one line for the user."""

    ok: bool
    message: str
    version: str = ""
    files_checked: int = 0
    problems: tuple[str, ...] = field(default=())  # every problem found, first first


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while chunk := fh.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _walk(artifact: Path) -> dict[str, Path]:
    """``{relative posix path: path}`` of every file (a single file: its own name).

    Symbolic links are listed as entries (a link to a file: its target's content is hashed;
    a link to a directory is listed, not followed), so a link planted in a release shows up
    as an added file.
    """
    if not artifact.is_dir():
        return {artifact.name: artifact}
    found: dict[str, Path] = {}
    for dirpath, dirnames, filenames in os.walk(artifact):
        dirnames.sort()
        links = [d for d in dirnames if (Path(dirpath) / d).is_symlink()]
        for name in [*filenames, *links]:
            path = Path(dirpath) / name
            found[path.relative_to(artifact).as_posix()] = path
    return found


def _entry(rel: str, path: Path) -> dict[str, object]:
    if path.is_dir():
        raise ValueError(f"{rel} is a symbolic link to a directory; releases may not hold one")
    return {"path": rel, "sha256": _sha256(path), "size": path.stat().st_size}


def make_manifest(root: Path, version: str = __version__) -> bytes:
    """The manifest of ``root`` (a directory, or one file) as UTF-8 JSON bytes.

    Raises FileNotFoundError if ``root`` is absent, ValueError for a link to a directory.
    """
    root = Path(root)
    if not root.exists():
        raise FileNotFoundError(f"{root} does not exist")
    files = [_entry(rel, path) for rel, path in sorted(_walk(root).items())]
    manifest = {"files": files, "format": MANIFEST_FORMAT, "version": version}
    return (json.dumps(manifest, indent=1, sort_keys=True, ensure_ascii=False) + "\n").encode()


def sign_manifest(manifest: bytes, private_key: Ed25519PrivateKey) -> bytes:
    """The detached signature file's content for ``manifest`` (the exact bytes)."""
    signature = private_key.sign(manifest)
    doc = {
        "format": SIGNATURE_FORMAT,
        "algorithm": "Ed25519",
        "key": key_fingerprint(private_key),
        "signature": base64.b64encode(signature).decode("ascii"),
    }
    return (json.dumps(doc, indent=1) + "\n").encode("ascii")


def _fail(
    message: str, problems: tuple[str, ...] = (), *, version: str = "", files_checked: int = 0,
) -> Report:
    return Report(False, message, version, files_checked, problems or (message,))


def _check_signature(
    manifest: bytes, signature_file: bytes, public_key: Ed25519PublicKey,
) -> str:
    """'' if the signature holds, else why not."""
    try:
        doc = json.loads(signature_file)
        sig_b64, signer = doc["signature"], doc["key"]
        sig = base64.b64decode(sig_b64, validate=True)
        if base64.b64encode(sig).decode("ascii") != sig_b64:
            raise ValueError("not the canonical base64 spelling")  # unused bits varied
    except (ValueError, KeyError, TypeError, RecursionError, binascii.Error):
        return "the signature file is malformed (not a SafeConsult release signature)"
    expected = key_fingerprint(public_key)
    if signer != expected:
        return (f"wrong key: the release was signed by key {signer}, the key given is "
                f"{expected}")
    try:
        public_key.verify(sig, manifest)
    except InvalidSignature:
        return "bad signature: the manifest or its signature was altered after signing"
    return ""


def verify_release(
    artifact: Path, manifest_path: Path, signature_path: Path,
    public_key: Ed25519PublicKey | str,
) -> Report:
    """Check ``artifact`` (directory or file) against its signed manifest.

    Order: the signature (wrong key, bad signature) before anything in the manifest is
    believed; then every file -- changed (size or SHA-256), missing, extra. The report's
    message names the first problem; ``problems`` lists them all.
    """
    artifact, manifest_path, signature_path = map(Path, (artifact, manifest_path,
                                                          signature_path))
    if isinstance(public_key, str):
        try:
            public_key = decode_public_key(public_key)
        except ValueError as exc:
            return _fail(f"the public key is not an Ed25519 key ({exc})")
    try:
        manifest = manifest_path.read_bytes()
        signature_file = signature_path.read_bytes()
    except OSError as exc:
        return _fail(f"cannot read {exc.filename}: {exc.strerror}")
    problem = _check_signature(manifest, signature_file, public_key)
    if problem:
        return _fail(problem)
    try:
        doc = json.loads(manifest)
        version = doc["version"]
        entries = {e["path"]: (int(e["size"]), e["sha256"]) for e in doc["files"]}
        if doc.get("format") != MANIFEST_FORMAT:
            raise ValueError(doc.get("format"))
    except (ValueError, KeyError, TypeError):
        return _fail("the manifest is signed but not in a format this version understands")
    if not artifact.exists():
        return _fail(f"{artifact} does not exist", version=version)
    present = _walk(artifact)
    problems: list[str] = []
    for rel in sorted(set(entries) | set(present)):
        if rel not in present:
            problems.append(f"missing file: {rel}")
            continue
        if rel not in entries:
            problems.append(f"extra file not in the manifest: {rel}")
            continue
        size, digest = entries[rel]
        path = present[rel]
        try:
            same = path.stat().st_size == size and _sha256(path) == digest
        except OSError as exc:
            problems.append(f"unreadable file: {rel} ({exc.strerror})")
            continue
        if not same:
            problems.append(f"changed file: {rel} (its SHA-256 does not match the manifest)")
    if problems:
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        return _fail(problems[0] + more, tuple(problems), version=version,
                     files_checked=len(entries))
    return Report(True, f"release {version} verified: {len(entries)} file(s) match the signed "
                        f"manifest", version=version, files_checked=len(entries))

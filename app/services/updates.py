"""Verified updates: python-tuf against the reference server's update repository.

The client trusts one thing it was installed with: IT's TUF root metadata
(``update-root.json`` beside the machine policy). From it, python-tuf's updater checks the
server's timestamp, snapshot and targets metadata -- signatures by the keys root names,
version numbers that never go back, expiry dates that have not passed -- and then the
downloaded file's length and SHA-256. On top of that, this service applies an update only
when the release it names is *newer* than the running version (no downgrade, even one IT
signed by mistake).

"Apply" here means: the verified installer is staged in the user's data directory with a
``pending.json`` beside it, and the platform's installer takes it from there (dpkg on Linux,
the Inno Setup installer's silent mode on Windows; docs/admin-guide.md, "Updates"). Nothing
is staged when any check fails, and each refusal has one clear line saying why.

Synchronous, as python-tuf is: call :meth:`UpdateService.check` / :meth:`apply` from a
worker thread (``check_async`` / ``apply_async`` do that).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import re
import shutil
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from tuf.api import exceptions as tuf_errors
from tuf.api.metadata import Metadata, TargetFile
from tuf.ngclient import FetcherInterface, Updater

from app import __version__
from app.config import system_policy_path
from app.net.updates_api import PinnedFetcher, metadata_url, targets_url

Status = Literal["current", "available", "staged", "refused", "unavailable"]
_VERSION = re.compile(r"^\d+(\.\d+){0,3}$")


def update_root_path() -> Path:
    """IT's TUF root metadata, installed beside the machine policy."""
    return system_policy_path().with_name("update-root.json")


def this_platform() -> str:
    if sys.platform.startswith("win"):
        return "windows-x64"
    if sys.platform == "darwin":
        return "macos"
    return "linux-deb"


def parse_version(text: str) -> tuple[int, ...]:
    """``"1.2.0"`` -> ``(1, 2, 0, 0)``; ValueError for anything but numbers and dots."""
    if not _VERSION.match(text):
        raise ValueError(f"not a release version: {text!r}")
    numbers = tuple(int(part) for part in text.split("."))
    return numbers + (0,) * (4 - len(numbers))


@dataclass(frozen=True)
class UpdateResult:
    """One check's outcome. ``message`` is one line for the user and the log (no PHI: only
    versions and file names). ``reason`` is a stable code for refusals."""

    status: Status
    message: str
    version: str = ""
    reason: str = ""
    path: Path | None = None

    @property
    def refused(self) -> bool:
        return self.status == "refused"


def _refusal(exc: Exception) -> UpdateResult:
    detail = str(exc) or type(exc).__name__
    if isinstance(exc, tuf_errors.ExpiredMetadataError):
        return UpdateResult(
            "refused", f"Update refused: the server's signed update metadata has expired "
            f"({detail}). Stale metadata can hide a newer fix or replay an old one; nothing "
            "was installed. IT must re-sign the repository (app.tools.updates refresh).",
            reason="stale")
    if isinstance(exc, tuf_errors.BadVersionNumberError):
        return UpdateResult(
            "refused", f"Update refused: the server sent older update metadata than this "
            f"computer already trusts ({detail}): a rollback attempt. Nothing was installed.",
            reason="metadata-rollback")
    if isinstance(exc, tuf_errors.UnsignedMetadataError):
        return UpdateResult(
            "refused", f"Update refused: the update metadata is not signed by the keys this "
            f"computer trusts ({detail}). Nothing was installed.", reason="unsigned")
    if isinstance(exc, tuf_errors.LengthOrHashMismatchError):
        return UpdateResult(
            "refused", f"Update refused: the downloaded file does not match its signed length "
            f"and SHA-256 ({detail}): it was changed or damaged. Nothing was installed.",
            reason="tampered")
    if isinstance(exc, tuf_errors.RepositoryError):
        return UpdateResult(
            "refused", f"Update refused: the update metadata did not verify "
            f"({type(exc).__name__}: {detail}). Nothing was installed.", reason="invalid")
    return UpdateResult(
        "unavailable", f"No update check: the update server could not be reached or lacks a "
        f"file ({type(exc).__name__}: {detail}). Nothing changed.", reason="unreachable")


class UpdateService:
    """Checks for, verifies and stages updates for one installation.

    ``state_dir`` keeps the metadata this computer has trusted so far (what makes rollback
    and freeze attacks visible) and the staged installer.
    """

    def __init__(
        self, *, server_url: str, ca_pem: str, state_dir: Path,
        trust_root: Path | None = None, current_version: str = __version__,
        platform: str | None = None,
        fetcher_factory: Callable[[], FetcherInterface] | None = None,
    ) -> None:
        self.server_url = server_url
        self.state_dir = state_dir
        self.trust_root = trust_root or update_root_path()
        self.current_version = current_version
        self.platform = platform or this_platform()
        self._fetcher_factory = fetcher_factory or (lambda: PinnedFetcher(ca_pem))

    @property
    def metadata_dir(self) -> Path:
        return self.state_dir / "metadata"

    @property
    def staged_dir(self) -> Path:
        return self.state_dir / "staged"

    # -- public ----------------------------------------------------------------------------

    def check(self) -> UpdateResult:
        """Verify the server's metadata and say whether a newer release is offered."""
        return self._run(download=False)

    def apply(self) -> UpdateResult:
        """:meth:`check`, then download, verify and stage the newer release."""
        return self._run(download=True)

    async def check_async(self) -> UpdateResult:
        return await asyncio.to_thread(self.check)

    async def apply_async(self) -> UpdateResult:
        return await asyncio.to_thread(self.apply)

    def pending(self) -> dict[str, str] | None:
        """The staged update (``{"version", "file", "sha256"}``), if any."""
        try:
            return json.loads((self.staged_dir / "pending.json").read_text("utf-8"))
        except (OSError, ValueError):
            return None

    # -- the work --------------------------------------------------------------------------

    def _run(self, *, download: bool) -> UpdateResult:
        try:
            current = parse_version(self.current_version)
        except ValueError as exc:
            return UpdateResult("refused", f"Update refused: {exc}", reason="invalid")
        try:
            bootstrap = self._bootstrap()
        except OSError as exc:
            return UpdateResult(
                "refused", f"No update check: this computer has no update root of trust "
                f"({self.trust_root}: {exc.strerror}). IT installs update-root.json with the "
                "policy.", reason="no-trust-root")
        fetcher = self._fetcher_factory()
        try:
            updater = Updater(
                metadata_dir=str(self.metadata_dir),
                metadata_base_url=metadata_url(self.server_url),
                target_dir=str(self.staged_dir),
                target_base_url=targets_url(self.server_url),
                fetcher=fetcher,
                bootstrap=bootstrap,
            )
            updater.refresh()
            best = self._newest_offer(updater)
            if best is None:
                return UpdateResult("current", f"No release for {self.platform} is published; "
                                    f"{self.current_version} stays.")
            version, info = best
            if parse_version(version) < current:
                return UpdateResult(
                    "refused", f"Update refused: the newest release offered for this computer, "
                    f"{version}, is older than the installed {self.current_version} "
                    "(no downgrades). Nothing was installed.", version=version,
                    reason="rollback")
            if parse_version(version) == current:
                return UpdateResult("current", f"SafeConsult {self.current_version} is up to "
                                    "date.", version=version)
            if not download:
                return UpdateResult("available", f"SafeConsult {version} is available (signed "
                                    "metadata verified).", version=version)
            path = self._stage(updater, info, version)
            return UpdateResult("staged", f"SafeConsult {version} downloaded and verified; it "
                                "is installed at the next restart.", version=version, path=path)
        except (tuf_errors.RepositoryError, tuf_errors.DownloadError) as exc:
            return _refusal(exc)
        finally:
            close = getattr(fetcher, "close", None)
            if close is not None:
                close()

    def _bootstrap(self) -> bytes | None:
        """The root to start from: the local chain when this computer has one (it may have
        followed key rotations since), else the installed trust root."""
        self.metadata_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        if (self.metadata_dir / "root.json").exists():
            return None
        return self.trust_root.read_bytes()

    def _newest_offer(self, updater: Updater) -> tuple[str, TargetFile] | None:
        # refresh() stored the targets metadata it verified; read the names from that copy
        # and take each entry again through get_targetinfo (the public, verified lookup).
        targets = Metadata.from_file(str(self.metadata_dir / "targets.json")).signed.targets
        offers: list[tuple[tuple[int, ...], str, str]] = []
        for name, info in targets.items():
            custom = info.custom if isinstance(info.custom, dict) else {}
            version = custom.get("version", "")
            if custom.get("platform") != self.platform or not isinstance(version, str):
                continue
            try:
                offers.append((parse_version(version), version, name))
            except ValueError:
                continue  # a malformed entry is never chosen
        if not offers:
            return None
        _, version, name = max(offers)
        info = updater.get_targetinfo(name)
        if info is None:
            raise tuf_errors.RepositoryError(f"{name} vanished from the verified metadata")
        return version, info

    def _stage(self, updater: Updater, info: TargetFile, version: str) -> Path:
        self.staged_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        partial = self.staged_dir / (Path(info.path).name + ".part")
        final = self.staged_dir / Path(info.path).name
        partial.unlink(missing_ok=True)
        # download_target checks length and hashes before the file appears at ``partial``.
        updater.download_target(info, filepath=str(partial))
        os.replace(partial, final)
        digest = hashlib.sha256(final.read_bytes()).hexdigest()
        pending = {"version": version, "file": final.name, "sha256": digest}
        tmp = self.staged_dir / "pending.json.tmp"
        tmp.write_text(json.dumps(pending), encoding="utf-8")
        os.replace(tmp, self.staged_dir / "pending.json")
        return final

    def discard_staged(self) -> None:
        shutil.rmtree(self.staged_dir, ignore_errors=True)

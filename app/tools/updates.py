"""IT tool for the update repository (TUF metadata): docs/admin-guide.md, "Updates".

    python -m app.tools.updates init REPO --keys KEYDIR
        four Ed25519 keys (root, targets, snapshot, timestamp) in KEYDIR, the first signed
        metadata in REPO/metadata; REPO/metadata/1.root.json is the trust anchor deployed to
        every client as update-root.json beside the machine policy
    python -m app.tools.updates add REPO ARTIFACT --version V --keys KEYDIR [--platform P]
        publish ARTIFACT (a .deb, a Windows installer) as release V for platform P
    python -m app.tools.updates refresh REPO --keys KEYDIR
        re-sign snapshot and timestamp (run daily: a client refuses stale metadata)
    python -m app.tools.updates rotate REPO --role ROLE --keys KEYDIR
        replace ROLE's key; the new root is signed by the old and the new root keys

The server publishes REPO as it is: ``safeconsult-server`` serves ``DATA_DIR/updates``
(``/updates/metadata/...`` and ``/updates/targets/...``). The repository uses consistent
snapshots (versioned metadata, hash-prefixed target files), so a client never mixes two
publications. Exit status: 0 done, 2 bad input.
"""

from __future__ import annotations

import argparse
import re
import shutil
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from securesystemslib.signer import CryptoSigner, SSlibKey
from tuf.api.metadata import (
    SPECIFICATION_VERSION,
    Metadata,
    MetaFile,
    Root,
    Snapshot,
    TargetFile,
    Targets,
    Timestamp,
)
from tuf.api.serialization.json import JSONSerializer

from app.security.policy_signing import load_private_key, write_private_key

ROLES = ("root", "targets", "snapshot", "timestamp")
# How long each role's signature stays good. The timestamp is re-signed daily (refresh):
# a client that cannot get fresh metadata refuses to update rather than trust old news.
DEFAULT_EXPIRY = {
    "root": timedelta(days=365),
    "targets": timedelta(days=90),
    "snapshot": timedelta(days=7),
    "timestamp": timedelta(days=1),
}
PLATFORMS = ("linux-deb", "windows-x64", "macos")
_VERSION = re.compile(r"^\d+(\.\d+){0,3}$")
_SERIALIZER = JSONSerializer(compact=False)


class RepositoryError(Exception):
    """A repository operation that cannot be done (message for the operator)."""


def _now() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


def target_name(platform: str, version: str, artifact: Path) -> str:
    """The target path clients look up: ``PLATFORM/VERSION/FILENAME``."""
    return f"{platform}/{version}/{artifact.name}"


@dataclass
class UpdateRepository:
    """A TUF repository on disk: ``root/metadata`` and ``root/targets``; keys in ``keys``.

    ``expiry`` maps a role to how long its new signatures last (tests give negative values
    to make stale metadata on purpose).
    """

    root: Path
    keys: Path
    expiry: dict[str, timedelta] | None = None

    @property
    def metadata_dir(self) -> Path:
        return self.root / "metadata"

    @property
    def targets_dir(self) -> Path:
        return self.root / "targets"

    def _expires(self, role: str) -> datetime:
        return _now() + (self.expiry or {}).get(role, DEFAULT_EXPIRY[role])

    # -- keys ----------------------------------------------------------------------------

    def _key_file(self, role: str) -> Path:
        return self.keys / f"{role}.pem"

    def signer(self, role: str) -> CryptoSigner:
        try:
            return CryptoSigner(load_private_key(self._key_file(role)))
        except ValueError as exc:
            raise RepositoryError(f"the {role} key: {exc}") from None

    @staticmethod
    def public(signer: CryptoSigner) -> SSlibKey:
        return signer.public_key  # type: ignore[return-value]

    def _new_key(self, role: str, path: Path | None = None) -> CryptoSigner:
        key = Ed25519PrivateKey.generate()
        write_private_key(path or self._key_file(role), key)
        return CryptoSigner(key)

    # -- metadata files ------------------------------------------------------------------

    def _latest(self, role: str) -> tuple[Metadata, int]:
        if role == "timestamp":
            path = self.metadata_dir / "timestamp.json"
            if not path.exists():
                raise RepositoryError(f"no repository at {self.root} (run init first)")
            md = Metadata.from_file(str(path))
            return md, md.signed.version
        versions = sorted(int(p.name.split(".", 1)[0])
                          for p in self.metadata_dir.glob(f"*.{role}.json")
                          if p.name.split(".", 1)[0].isdigit())
        if not versions:
            raise RepositoryError(f"no {role} metadata in {self.metadata_dir} (run init first)")
        return Metadata.from_file(str(self.metadata_dir / f"{versions[-1]}.{role}.json")), \
            versions[-1]

    def _write(self, md: Metadata, role: str) -> None:
        name = "timestamp.json" if role == "timestamp" else f"{md.signed.version}.{role}.json"
        md.to_file(str(self.metadata_dir / name), _SERIALIZER)

    def _sign(self, md: Metadata, role: str) -> Metadata:
        md.signatures.clear()
        md.sign(self.signer(role), append=True)
        return md

    # -- operations ----------------------------------------------------------------------

    def init(self) -> Path:
        """New keys and the first metadata; returns the root file to deploy to clients."""
        if (self.metadata_dir / "1.root.json").exists():
            raise RepositoryError(f"{self.root} already holds a repository")
        self.keys.mkdir(parents=True, exist_ok=True, mode=0o700)
        existing = [r for r in ROLES if self._key_file(r).exists()]
        if existing:
            raise RepositoryError(f"{self.keys} already holds keys ({', '.join(existing)}): "
                                  "use another directory")
        self.metadata_dir.mkdir(parents=True, exist_ok=True)
        self.targets_dir.mkdir(parents=True, exist_ok=True)
        signers = {role: self._new_key(role) for role in ROLES}
        root = Root(expires=self._expires("root"), consistent_snapshot=True)
        for role, signer in signers.items():
            root.add_key(self.public(signer), role)
        root_md = Metadata(root)
        self._write(self._sign(root_md, "root"), "root")
        targets = Metadata(Targets(expires=self._expires("targets")))
        self._write(self._sign(targets, "targets"), "targets")
        self._publish_snapshot(targets_version=1)
        return self.metadata_dir / "1.root.json"

    def add(self, artifact: Path, version: str, platform: str = "linux-deb") -> str:
        """Publish ``artifact`` as release ``version``; returns its target name."""
        if not _VERSION.match(version):
            raise RepositoryError(f"version {version!r} must be numbers and dots (e.g. 1.2.0)")
        if platform not in PLATFORMS:
            raise RepositoryError(f"platform must be one of {', '.join(PLATFORMS)}")
        if not artifact.is_file():
            raise RepositoryError(f"{artifact} is not a file")
        targets, _ = self._latest("targets")
        name = target_name(platform, version, artifact)
        if name in targets.signed.targets:
            raise RepositoryError(f"{name} is already published (a release is never replaced)")
        info = TargetFile.from_file(name, str(artifact), ["sha256"])
        info.unrecognized_fields["custom"] = {"version": version, "platform": platform}
        # Consistent snapshot: clients fetch DIR/HASH.FILENAME.
        stored = self.targets_dir / platform / version / f"{info.hashes['sha256']}.{artifact.name}"
        stored.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(artifact, stored)
        targets.signed.targets[name] = info
        targets.signed.version += 1
        targets.signed.expires = self._expires("targets")
        self._write(self._sign(targets, "targets"), "targets")
        self._publish_snapshot(targets_version=targets.signed.version)
        return name

    def refresh(self) -> None:
        """New snapshot and timestamp signatures (the daily job)."""
        _, targets_version = self._latest("targets")
        self._publish_snapshot(targets_version=targets_version)

    def rotate(self, role: str) -> None:
        """Replace ``role``'s key. The old key file is kept as ROLE.retired-N.pem (store it
        offline, or destroy it when it was compromised)."""
        if role not in ROLES:
            raise RepositoryError(f"role must be one of {', '.join(ROLES)}")
        root, _ = self._latest("root")
        old_signer = self.signer(role)
        old_root_signer = self.signer("root")
        staged = self.keys / f"{role}.new.pem"
        if staged.exists():
            raise RepositoryError(f"{staged} exists: an earlier rotation did not finish")
        new_signer = self._new_key(role, staged)
        root.signed.revoke_key(self.public(old_signer).keyid, role)
        root.signed.add_key(self.public(new_signer), role)
        root.signed.version += 1
        root.signed.expires = self._expires("root")
        root.signatures.clear()
        # A client trusts root N+1 only when root N's keys and N+1's keys both signed it.
        root.sign(old_root_signer, append=True)
        if role == "root":
            root.sign(new_signer, append=True)
        self._write(root, "root")
        retired = 1
        while (self.keys / f"{role}.retired-{retired}.pem").exists():
            retired += 1
        self._key_file(role).rename(self.keys / f"{role}.retired-{retired}.pem")
        staged.rename(self._key_file(role))
        if role == "root":
            return
        targets, targets_version = self._latest("targets")
        if role == "targets":  # re-signed by the new key
            targets.signed.version += 1
            targets.signed.expires = self._expires("targets")
            self._write(self._sign(targets, "targets"), "targets")
            targets_version = targets.signed.version
        self._publish_snapshot(targets_version=targets_version)

    def _publish_snapshot(self, *, targets_version: int) -> None:
        try:
            snapshot, _ = self._latest("snapshot")
            snapshot.signed.version += 1
        except RepositoryError:
            snapshot = Metadata(Snapshot())
        snapshot.signed.meta["targets.json"] = MetaFile(version=targets_version)
        snapshot.signed.expires = self._expires("snapshot")
        self._write(self._sign(snapshot, "snapshot"), "snapshot")
        try:
            timestamp, _ = self._latest("timestamp")
            timestamp.signed.version += 1
        except RepositoryError:
            timestamp = Metadata(Timestamp())
        timestamp.signed.snapshot_meta = MetaFile(version=snapshot.signed.version)
        timestamp.signed.expires = self._expires("timestamp")
        self._write(self._sign(timestamp, "timestamp"), "timestamp")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m app.tools.updates",
        description=f"Sign and publish SafeConsult updates (TUF {SPECIFICATION_VERSION[0]}.x "
                    "metadata).")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def common(p: argparse.ArgumentParser) -> argparse.ArgumentParser:
        p.add_argument("repo", type=Path, metavar="REPO", help="the repository directory")
        p.add_argument("--keys", type=Path, required=True, metavar="KEYDIR",
                       help="the role keys (keep off the server; root offline)")
        return p

    common(sub.add_parser("init", help="new keys and first metadata"))
    add = common(sub.add_parser("add", help="publish an artifact"))
    add.add_argument("artifact", type=Path, metavar="ARTIFACT")
    add.add_argument("--version", required=True)
    add.add_argument("--platform", default="linux-deb", choices=PLATFORMS)
    common(sub.add_parser("refresh", help="re-sign snapshot and timestamp (daily)"))
    rotate = common(sub.add_parser("rotate", help="replace one role's key"))
    rotate.add_argument("--role", required=True, choices=ROLES)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    repo = UpdateRepository(args.repo, args.keys)
    try:
        if args.command == "init":
            anchor = repo.init()
            print(f"repository created; deploy {anchor} to clients as update-root.json")
        elif args.command == "add":
            name = repo.add(args.artifact, args.version, args.platform)
            print(f"published {name}")
        elif args.command == "refresh":
            repo.refresh()
            print("snapshot and timestamp re-signed")
        else:
            repo.rotate(args.role)
            print(f"{args.role} key rotated; old key kept as {args.role}.retired-N.pem")
    except (RepositoryError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""IT tool for signed releases (docs/admin-guide.md, "Verifying a release").

    python -m app.tools.release sign ARTIFACT --key PRIV [--out ARTIFACT.manifest.json]
        writes the manifest and its detached signature (the same name + ".sig")
    python -m app.tools.release verify ARTIFACT --key PUB [--manifest M] [--signature S]

ARTIFACT is a directory (an unpacked installer) or one file (a .deb, .msi, .dmg).
Exit status: 0 verified / signed, 1 verification failed, 2 bad input.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from app.security.policy_signing import load_private_key, load_public_key
from app.security.release import make_manifest, sign_manifest, verify_release


def default_manifest(artifact: Path) -> Path:
    artifact = Path(artifact)
    return artifact.with_name(artifact.name + ".manifest.json")


def signature_for(manifest: Path) -> Path:
    return manifest.with_name(manifest.name + ".sig")


def _add_verify_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("artifact", type=Path, metavar="ARTIFACT")
    parser.add_argument("--key", type=Path, required=True, metavar="PUB",
                        help="the release public key (base64 .pub or PEM)")
    parser.add_argument("--manifest", type=Path, help="default: ARTIFACT.manifest.json")
    parser.add_argument("--signature", type=Path, help="default: MANIFEST.sig")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m app.tools.release",
        description="Sign a SafeConsult release, or verify one before deploying it.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    sign = sub.add_parser("sign", help="write a signed manifest of ARTIFACT")
    sign.add_argument("artifact", type=Path, metavar="ARTIFACT")
    sign.add_argument("--key", type=Path, required=True, metavar="PRIV")
    sign.add_argument("--out", type=Path, help="manifest path (default ARTIFACT.manifest.json)")
    sign.add_argument("--version", default=None, help="release version (default: this client's)")
    _add_verify_arguments(sub.add_parser("verify", help="check ARTIFACT against its manifest"))
    return parser


def _verify(args: argparse.Namespace) -> int:
    try:
        public_key = load_public_key(args.key)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    manifest = args.manifest or default_manifest(args.artifact)
    signature = args.signature or signature_for(manifest)
    report = verify_release(args.artifact, manifest, signature, public_key)
    if report.ok:
        print(f"OK: {report.message}")
        return 0
    print(f"REFUSED: {args.artifact}: {report.message}", file=sys.stderr)
    for problem in report.problems[1:]:
        print(f"  {problem}", file=sys.stderr)
    return 1


def _sign(args: argparse.Namespace) -> int:
    try:
        key = load_private_key(args.key)
        manifest = (make_manifest(args.artifact, args.version) if args.version
                    else make_manifest(args.artifact))
    except (ValueError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    out = args.out or default_manifest(args.artifact)
    if args.artifact.is_dir() and out.resolve().is_relative_to(args.artifact.resolve()):
        print(f"error: {out} is inside {args.artifact}; write the manifest beside it",
              file=sys.stderr)
        return 2
    out.write_bytes(manifest)
    signature_for(out).write_bytes(sign_manifest(manifest, key))
    print(f"wrote {out} and {signature_for(out)}")
    return 0


def verify_release_main(argv: Sequence[str] | None = None) -> int:
    """``safeconsult verify-release ARTIFACT --key PUB [--manifest M] [--signature S]``."""
    parser = argparse.ArgumentParser(
        prog="safeconsult verify-release",
        description="Check a SafeConsult release against its signed manifest.",
    )
    _add_verify_arguments(parser)
    return _verify(parser.parse_args(argv))


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return _sign(args) if args.command == "sign" else _verify(args)


if __name__ == "__main__":
    sys.exit(main())

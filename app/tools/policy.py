"""IT tool for the signed machine policy (docs/admin-guide.md, "Signing the machine policy").

    python -m app.tools.policy keygen --out DIR [--key-id ID]
    python -m app.tools.policy sign POLICY.json --key PRIV --key-id ID [--expires-days N]
                                    --out SIGNED.json
    python -m app.tools.policy verify SIGNED.json [--trusted trusted-keys.json]
    python -m app.tools.policy trust trusted-keys.json [--add PUB --key-id ID] [--remove ID]

Exit status: 0 success, 1 refused (verify), 2 bad input (a message on stderr).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from app.config import Policy
from app.core.errors import PolicyError
from app.security.policy_signing import (
    key_fingerprint,
    load_private_key,
    load_public_key,
    load_trusted_keys,
    make_policy_verifier,
    parse_trusted_keys,
    public_key_b64,
    sign_policy,
    trusted_keys_json,
    trusted_keys_path,
    write_private_key,
)

MAX_EXPIRES_DAYS = 3650


class UsageError(Exception):
    """Bad input: printed on stderr, exit status 2."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m app.tools.policy",
        description="Create IT signing keys, sign and verify the SafeConsult machine policy.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    keygen = sub.add_parser("keygen", help="create an Ed25519 signing key pair")
    keygen.add_argument("--out", type=Path, required=True, metavar="DIR",
                        help="directory for ID.key (private, 0600) and ID.pub")
    keygen.add_argument("--key-id", help="name of the key (default: it-YYYYMMDD-<fingerprint>)")

    sign = sub.add_parser("sign", help="sign a policy JSON file")
    sign.add_argument("policy", type=Path, metavar="POLICY.json")
    sign.add_argument("--key", type=Path, required=True, metavar="PRIV")
    sign.add_argument("--key-id", required=True, metavar="ID",
                      help="the id this key has in the machines' trusted-keys.json")
    sign.add_argument("--expires-days", type=int, default=365, metavar="N",
                      help=f"valid for N days (1-{MAX_EXPIRES_DAYS}, default 365)")
    sign.add_argument("--out", type=Path, required=True, metavar="SIGNED.json")

    verify = sub.add_parser("verify", help="check a signed policy as a client would")
    verify.add_argument("signed", type=Path, metavar="SIGNED.json")
    verify.add_argument("--trusted", type=Path, metavar="trusted-keys.json",
                        help=f"default: {trusted_keys_path()}")

    trust = sub.add_parser("trust", help="add or remove a key in a trusted-keys.json")
    trust.add_argument("trusted", type=Path, metavar="trusted-keys.json")
    trust.add_argument("--add", type=Path, metavar="PUB", help="public key file to trust")
    trust.add_argument("--key-id", metavar="ID", help="id of the key added (with --add)")
    trust.add_argument("--remove", metavar="ID", action="append", default=[],
                       help="stop trusting this key id (repeatable)")
    return parser


def cmd_keygen(args: argparse.Namespace) -> int:
    key = Ed25519PrivateKey.generate()
    fingerprint = key_fingerprint(key)
    key_id = args.key_id or (
        f"it-{datetime.now(UTC):%Y%m%d}-{fingerprint.removeprefix('sha256:')[:8]}"
    )
    if "/" in key_id or "\\" in key_id or key_id.startswith("."):
        raise UsageError(f"key id {key_id!r} must be a plain name")
    args.out.mkdir(parents=True, exist_ok=True)
    priv, pub = args.out / f"{key_id}.key", args.out / f"{key_id}.pub"
    if priv.exists() or pub.exists():
        raise UsageError(f"{priv} or {pub} already exists; not overwriting a key")
    write_private_key(priv, key)
    pub.write_text(public_key_b64(key) + "\n", encoding="ascii")
    print(f"key id:      {key_id}")
    print(f"private key: {priv}  (keep offline; mode 0600)")
    print(f"public key:  {pub}")
    print(f"fingerprint: {fingerprint}")
    print("trusted-keys.json entry:")
    print(json.dumps({key_id: public_key_b64(key)}))
    return 0


def cmd_sign(args: argparse.Namespace) -> int:
    if not 1 <= args.expires_days <= MAX_EXPIRES_DAYS:
        raise UsageError(f"--expires-days must be between 1 and {MAX_EXPIRES_DAYS}")
    try:
        data = json.loads(args.policy.read_bytes())
    except OSError as exc:
        raise UsageError(f"cannot read {args.policy}: {exc.strerror}") from None
    except (ValueError, RecursionError) as exc:
        raise UsageError(f"{args.policy} is not valid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise UsageError(f"{args.policy} must be a JSON object of settings")
    if "signature" in data or "policy" in data:
        raise UsageError(f"{args.policy} looks already signed; sign the plain settings file")
    try:
        Policy.from_mapping(data, source=str(args.policy))  # refuse what clients would refuse
    except PolicyError as exc:
        raise UsageError(f"{args.policy}: the client would refuse this policy: {exc}") from None
    try:
        key = load_private_key(args.key)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    expires = datetime.now(UTC) + timedelta(days=args.expires_days)
    signed = sign_policy(data, key, args.key_id, expires)
    args.out.write_bytes(signed)
    print(f"signed {args.policy} -> {args.out} with {args.key_id} ({key_fingerprint(key)}), "
          f"expires {json.loads(signed)['expires']}")
    return 0


def cmd_verify(args: argparse.Namespace) -> int:
    try:
        keys = load_trusted_keys(args.trusted)
        raw = args.signed.read_bytes()
    except PolicyError as exc:
        raise UsageError(str(exc)) from None
    except OSError as exc:
        raise UsageError(f"cannot read {args.signed}: {exc.strerror}") from None
    try:
        settings, signer = make_policy_verifier(keys)(raw)
        policy = Policy.from_mapping(settings, source=str(args.signed), signer=signer)
    except PolicyError as exc:
        print(f"REFUSED: {args.signed}: {exc}", file=sys.stderr)
        return 1
    expires = json.loads(raw)["expires"]
    print(f"OK: {args.signed} signed by {policy.signer}, expires {expires}")
    print(json.dumps(dict(settings), indent=2, sort_keys=True))
    return 0


def cmd_trust(args: argparse.Namespace) -> int:
    keys: dict[str, str] = {}
    if args.trusted.exists():
        try:
            keys = parse_trusted_keys(args.trusted.read_bytes(), str(args.trusted))
        except PolicyError as exc:
            raise UsageError(str(exc)) from None
    if args.add:
        if not args.key_id:
            raise UsageError("--add needs --key-id")
        try:
            keys[args.key_id] = public_key_b64(load_public_key(args.add))
        except ValueError as exc:
            raise UsageError(str(exc)) from None
    for key_id in args.remove:
        if keys.pop(key_id, None) is None:
            raise UsageError(f"{args.trusted} has no key {key_id!r}")
    if not keys:
        raise UsageError("that would leave no trusted key: no policy could be accepted")
    args.trusted.write_bytes(trusted_keys_json(keys))
    print(f"{args.trusted}: trusts {', '.join(sorted(keys))}")
    return 0


COMMANDS = {"keygen": cmd_keygen, "sign": cmd_sign, "verify": cmd_verify, "trust": cmd_trust}


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return COMMANDS[args.command](args)
    except UsageError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())

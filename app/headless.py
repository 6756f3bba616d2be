"""Qt-free composition root: a command-line SafeConsult peer.

It builds the same services as the GUI, without Qt -- proof that the Qt boundary holds -- and
gives tests and IT scripts a client. Each capability adds a subcommand.

    python -m app.headless --demo-join DIR health
    python -m app.headless --server https://host:8443 --ca ca.pem health
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from pathlib import Path

from app import __version__
from app.config import Policy, load_policy
from app.core.errors import SafeConsultError


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m app.headless", description="SafeConsult command-line peer (no GUI).",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--demo-join", type=Path, metavar="DIR",
                       help="use the demo server started by `safeconsult --demo`")
    where.add_argument("--server", help="server URL (with --ca); default: machine policy")
    parser.add_argument("--ca", type=Path, help="PEM file of the CA to pin (with --server)")
    parser.add_argument("--json", action="store_true", help="machine-readable output")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    sub.add_parser("health", help="check the server is reachable over pinned TLS")
    return parser


def resolve_policy(args: argparse.Namespace) -> Policy:
    if args.demo_join:
        from app.services.demo_server import DemoServer

        return DemoServer.join(args.demo_join).policy()
    if args.server:
        if not args.ca:
            raise SafeConsultError("--server needs --ca", user_message="--server needs --ca FILE")
        return Policy(server_url=args.server, pinned_ca_pem=args.ca.read_text(),
                      source="command line")
    from app.security.policy_signing import system_policy_verifier

    return load_policy(verify=system_policy_verifier()).policy


async def run(args: argparse.Namespace) -> int:
    policy = resolve_policy(args)
    if args.command == "health":
        from app.services.connection import Reachability, check_server

        health = await check_server(policy)
        if args.json:
            print(json.dumps({"state": health.state, "version": health.version,
                              "message": health.message}))
        else:
            print(f"{policy.server_url}: {health.state}"
                  + (f" (server {health.version})" if health.version else "")
                  + (f" -- {health.message}" if health.message else ""))
        return 0 if health.state is Reachability.ONLINE else 1
    return 2


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return asyncio.run(run(args))
    except SafeConsultError as exc:
        print(f"error: {exc.user_message}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())

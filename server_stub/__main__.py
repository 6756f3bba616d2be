"""``python -m server_stub serve|admin --data-dir DIR ...``"""

from __future__ import annotations

import argparse
import contextlib
import sys
from pathlib import Path

from server_stub import __version__


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m server_stub",
        description="SafeConsult reference server (auth, devices, relay, blobs, audit).",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    serve = sub.add_parser("serve", help="run the server over TLS")
    serve.add_argument("--data-dir", type=Path, required=True, help="database, TLS, blobs")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8443, help="0 picks a free port")
    serve.add_argument("--ready-file", type=Path,
                       help="write {url, port, pid} as JSON here once listening")
    serve.add_argument("--no-device-approval", action="store_true",
                       help="activate enrolled devices without an admin's approval")
    serve.add_argument("--turn-secret-file", type=Path,
                       help="coturn static-auth-secret, read from this file (not argv)")
    serve.add_argument("--turn-url", action="append", default=[],
                       help="TURN URI handed to clients, e.g. turn:host:3478 (repeatable)")

    admin = sub.add_parser("admin", help="manage users, devices, grants and audit")
    admin.add_argument("--data-dir", type=Path, required=True)
    from server_stub.admin import add_admin_commands

    add_admin_commands(admin)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "serve":
        from server_stub.core.config import ServerSettings
        from server_stub.serve import serve

        settings = ServerSettings(
            data_dir=args.data_dir, host=args.host, port=args.port,
            require_device_approval=not args.no_device_approval,
            turn_secret=(args.turn_secret_file.read_text().strip()
                         if args.turn_secret_file else ""),
            turn_urls=tuple(args.turn_url),
        )
        with contextlib.suppress(KeyboardInterrupt):
            serve(settings, ready_file=args.ready_file)
        return 0
    from server_stub.admin import run_admin

    return run_admin(args)


if __name__ == "__main__":
    sys.exit(main())

"""Administration CLI: ``python -m server_stub admin --data-dir DIR ...``.

Works on the server's data directory directly (the server may be running: SQLite's locking
keeps both consistent). Exit codes: 0 done, 1 refused (e.g. no such user), 2 usage.
"""

from __future__ import annotations

import argparse


def add_admin_commands(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="admin_command", required=True, metavar="COMMAND")
    sub.add_parser("info", help="show the data directory's server identity and CA path")


def run_admin(args: argparse.Namespace) -> int:
    from server_stub.core.config import ServerSettings
    from server_stub.main import create_app
    from server_stub.tls import ensure_tls

    settings = ServerSettings(data_dir=args.data_dir)
    create_app(settings)
    files = ensure_tls(settings.data_dir)
    if args.admin_command == "info":
        print(f"data directory: {settings.data_dir}")
        print(f"database:       {settings.db_path}")
        print(f"CA to pin:      {files.ca_cert}")
        return 0
    return 2

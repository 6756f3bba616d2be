"""Administration CLI: ``python -m server_stub admin --data-dir DIR ...``.

Works on the server's data directory directly (the server may be running: SQLite's locking
keeps both consistent). Exit codes: 0 done, 1 refused (e.g. no such user), 2 usage.

The operations are also plain functions on a ``Database`` (``add_user``, ``approve_device``,
...), used by the CLI and by tests. Every change is audited with source ``admin-cli``.
Grant commands belong to the relay side: ``add_grant_commands`` (below) is where they hook in.
"""

from __future__ import annotations

import argparse
import json
import secrets
import sqlite3
import sys
from dataclasses import dataclass
from pathlib import Path

from server_stub.core.db import Database
from server_stub.core.schema import MIGRATIONS
from server_stub.core.security import (
    SecretBox,
    hash_password,
    new_totp_secret,
    otpauth_uri,
    password_problem,
    secret_box,
)
from server_stub.crud import devices as devices_crud
from server_stub.crud import sessions as sessions_crud
from server_stub.crud import users as users_crud
from server_stub.crud.audit import append_audit, iter_entries, verify_chain

SOURCE = "admin-cli"


class AdminRefused(Exception):
    """The operation is not possible (unknown user, wrong state...): exit code 1."""


@dataclass(frozen=True)
class NewUser:
    user_id: str
    username: str
    role: str
    totp_secret: str
    otpauth_uri: str


def _box(db: Database) -> SecretBox:
    return secret_box(db.path.parent)


def open_database(data_dir: Path) -> Database:
    data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    return Database(data_dir / "server.sqlite3", MIGRATIONS)


# --- operations ---------------------------------------------------------------------------

def add_user(db: Database, username: str, role: str, password: str,
             totp_secret: str | None = None) -> NewUser:
    """Create a user with a fresh TOTP secret (returned once: it is shown to the user to
    scan as an otpauth:// URI; every user has TOTP from the start)."""
    problem = password_problem(password)
    if problem:
        raise AdminRefused(problem)
    name = users_crud.normalize_username(username)
    secret = totp_secret or new_totp_secret()
    sealed = _box(db).seal(secret, name)
    password_hash = hash_password(password)  # slow: outside the transaction
    try:
        with db.transaction() as conn:
            user = users_crud.create_user(conn, username=name, role=role,
                                          password_hash=password_hash, totp_sealed=sealed)
            append_audit(conn, actor_user_id=None, device_id=None, action="user.create",
                         object_type="user", object_id=user.id, outcome="ok", source=SOURCE,
                         detail={"role": role})
    except ValueError as exc:
        raise AdminRefused(str(exc)) from None
    except sqlite3.IntegrityError:
        raise AdminRefused(f"user {name!r} already exists") from None
    return NewUser(user.id, user.username, user.role, secret, otpauth_uri(secret, user.username))


def _user(conn: sqlite3.Connection, username: str) -> users_crud.User:
    user = users_crud.get_user_by_username(conn, username)
    if user is None:
        raise AdminRefused(f"no user {username!r}")
    return user


def disable_user(db: Database, username: str) -> None:
    """Disable and end every session; the user's devices stay enrolled."""
    with db.transaction() as conn:
        user = _user(conn, username)
        users_crud.set_disabled(conn, user.id, True)
        ended = sessions_crud.revoke_user_sessions(conn, user.id, "user_disabled")
        append_audit(conn, actor_user_id=None, device_id=None, action="user.disable",
                     object_type="user", object_id=user.id, outcome="ok", source=SOURCE,
                     detail={"sessions_revoked": ended})


def enable_user(db: Database, username: str) -> None:
    with db.transaction() as conn:
        user = _user(conn, username)
        users_crud.set_disabled(conn, user.id, False)
        users_crud.unlock(conn, user.username)
        append_audit(conn, actor_user_id=None, device_id=None, action="user.enable",
                     object_type="user", object_id=user.id, outcome="ok", source=SOURCE)


def reset_totp(db: Database, username: str) -> str:
    """A lost authenticator: a new secret (returned as an otpauth:// URI, shown once); the
    old codes stop working at once and the user's sessions end."""
    secret = new_totp_secret()
    with db.transaction() as conn:
        user = _user(conn, username)
        users_crud.set_totp(conn, user.id, _box(db).seal(secret, user.username))
        ended = sessions_crud.revoke_user_sessions(conn, user.id, "totp_reset")
        append_audit(conn, actor_user_id=None, device_id=None, action="user.totp_reset",
                     object_type="user", object_id=user.id, outcome="ok", source=SOURCE,
                     detail={"sessions_revoked": ended})
    return otpauth_uri(secret, user.username)


def reset_password(db: Database, username: str, password: str) -> None:
    problem = password_problem(password)
    if problem:
        raise AdminRefused(problem)
    password_hash = hash_password(password)
    with db.transaction() as conn:
        user = _user(conn, username)
        conn.execute("UPDATE users SET password_hash = ? WHERE id = ?", (password_hash, user.id))
        ended = sessions_crud.revoke_user_sessions(conn, user.id, "password_reset")
        users_crud.unlock(conn, user.username)
        append_audit(conn, actor_user_id=None, device_id=None, action="user.password_reset",
                     object_type="user", object_id=user.id, outcome="ok", source=SOURCE,
                     detail={"sessions_revoked": ended})


def _device(conn: sqlite3.Connection, device_id: str) -> devices_crud.Device:
    device = devices_crud.get_device(conn, device_id)
    if device is None:
        raise AdminRefused(f"no device {device_id!r}")
    return device


def approve_device(db: Database, device_id: str) -> None:
    with db.transaction() as conn:
        device = _device(conn, device_id)
        if not devices_crud.approve_device(conn, device_id):
            raise AdminRefused(f"device is {device.state}, not pending")
        append_audit(conn, actor_user_id=None, device_id=device_id, action="device.approve",
                     object_type="device", object_id=device_id, outcome="ok", source=SOURCE)


def revoke_device(db: Database, device_id: str, *, wipe: bool) -> str | None:
    """Revoke (the device is told ``device_revoked`` and must wipe); with ``wipe`` also
    issue a wipe order the device acknowledges. Returns the order id."""
    with db.transaction() as conn:
        device = _device(conn, device_id)
        if device.state == "wiped":
            raise AdminRefused("device is already wiped")
        order_id = devices_crud.revoke_device(conn, device_id, order_wipe=wipe)
        ended = sessions_crud.revoke_device_sessions(conn, device_id, "device_revoked")
        append_audit(conn, actor_user_id=None, device_id=device_id,
                     action="device.wipe" if wipe else "device.revoke", object_type="device",
                     object_id=device_id, outcome="ok", source=SOURCE,
                     detail={"order_id": order_id, "sessions_revoked": ended})
    return order_id


def logout_device(db: Database, device_id: str) -> str:
    with db.transaction() as conn:
        device = _device(conn, device_id)
        order_id = devices_crud.order_logout(conn, device_id)
        if order_id is None:
            raise AdminRefused(f"device is {device.state} (order {device.pending_order})")
        ended = sessions_crud.revoke_device_sessions(conn, device_id, "logout_order")
        append_audit(conn, actor_user_id=None, device_id=device_id, action="device.logout",
                     object_type="device", object_id=device_id, outcome="ok", source=SOURCE,
                     detail={"order_id": order_id, "sessions_revoked": ended})
    return order_id


DEMO_USERS = (("dr.demo", "physician"), ("nurse.demo", "nurse"),
              ("consult.demo", "consultant"), ("it.demo", "it_admin"),
              ("audit.demo", "auditor"))


def seed_demo(db: Database) -> list[dict[str, str]]:
    """One user per role, random passwords and TOTP secrets (printed once, for the demo)."""
    created = []
    for username, role in DEMO_USERS:
        password = secrets.token_urlsafe(12)
        user = add_user(db, username, role, password)
        created.append({"username": user.username, "role": role, "password": password,
                        "totp_secret": user.totp_secret, "otpauth_uri": user.otpauth_uri})
    return created


# --- CLI ------------------------------------------------------------------------------------

def add_grant_commands(sub: argparse._SubParsersAction) -> None:
    """Hook for the relay side's ``grant add|revoke`` subcommands (grants are its tables).
    Register a ``grant`` parser here with ``set_defaults(handler=...)``, where ``handler``
    takes ``(db, args)`` and returns an exit code; ``run_admin`` calls it."""
    from server_stub.admin_grants import add_grant_commands as add_relay_grant_commands
    add_relay_grant_commands(sub)


def add_admin_commands(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="admin_command", required=True, metavar="COMMAND")
    sub.add_parser("info", help="show the data directory's server identity and CA path")

    user = sub.add_parser("user", help="add, disable, enable, list users")
    usub = user.add_subparsers(dest="user_command", required=True, metavar="ACTION")
    add = usub.add_parser("add", help="create a user; password read from stdin; "
                                      "prints the TOTP otpauth:// URI once")
    add.add_argument("name")
    add.add_argument("--role", required=True, choices=users_crud.ROLES)
    for name, text in (("disable", "disable a user and end their sessions"),
                       ("enable", "enable a user and lift a login lock"),
                       ("reset-totp", "issue a new TOTP secret (prints the otpauth:// URI)"),
                       ("reset-password", "set a new password, read from stdin")):
        usub.add_parser(name, help=text).add_argument("name")
    usub.add_parser("list", help="list users")

    device = sub.add_parser("device", help="list, approve, revoke, wipe, log out devices")
    dsub = device.add_subparsers(dest="device_command", required=True, metavar="ACTION")
    dlist = dsub.add_parser("list", help="list devices")
    dlist.add_argument("--user", help="only this user's devices")
    for name, text in (("approve", "activate a pending device"),
                       ("revoke", "revoke a device (it must wipe)"),
                       ("wipe", "revoke and order a remote wipe"),
                       ("logout", "end the device's sessions and order a logout")):
        dsub.add_parser(name, help=text).add_argument("device_id")

    audit = sub.add_parser("audit", help="verify or export the audit log")
    asub = audit.add_subparsers(dest="audit_command", required=True, metavar="ACTION")
    verify = asub.add_parser("verify", help="check the hash chain; names the first bad entry")
    verify.add_argument("--expect-head", help="a '<seq>:<hash>' head recorded earlier")
    asub.add_parser("export", help="write every entry as JSON lines to stdout")

    seed = sub.add_parser("seed-demo", help="create one demo user per role (demo only)")
    seed.add_argument("--json", action="store_true", help="print credentials as JSON")
    add_grant_commands(sub)


def _read_password() -> str:
    if sys.stdin.isatty():
        import getpass

        first, second = getpass.getpass("Password: "), getpass.getpass("Again: ")
        if first != second:
            raise AdminRefused("passwords differ")
        return first
    return sys.stdin.readline().rstrip("\r\n")


def _run_user(db: Database, args: argparse.Namespace) -> int:
    if args.user_command == "add":
        new = add_user(db, args.name, args.role, _read_password())
        print(f"created {new.username} ({new.role}) id {new.user_id}")
        print("TOTP enrollment URI (shown once; give it to the user to scan):")
        print(new.otpauth_uri)
    elif args.user_command == "disable":
        disable_user(db, args.name)
        print(f"disabled {args.name}; sessions ended")
    elif args.user_command == "enable":
        enable_user(db, args.name)
        print(f"enabled {args.name}")
    elif args.user_command == "reset-totp":
        uri = reset_totp(db, args.name)
        print("new TOTP enrollment URI (shown once; old codes no longer work):")
        print(uri)
    elif args.user_command == "reset-password":
        reset_password(db, args.name, _read_password())
        print(f"password set for {args.name}; sessions ended")
    else:
        for u in users_crud.list_users(db.connection()):
            print(f"{u.username:<24} {u.role:<11} {'disabled' if u.disabled else 'enabled':<8}"
                  f" {u.id}")
    return 0


def _run_device(db: Database, args: argparse.Namespace) -> int:
    cmd = args.device_command
    if cmd == "list":
        conn = db.connection()
        user_id = _user(conn, args.user).id if args.user else None
        names = {u.id: u.username for u in users_crud.list_users(conn)}
        for d in devices_crud.list_devices(conn, user_id=user_id):
            print(f"{d.device_id}  {names.get(d.user_id, '?'):<20} {d.state:<8} "
                  f"order={d.pending_order:<6} {d.display_name}")
    elif cmd == "approve":
        approve_device(db, args.device_id)
        print(f"approved {args.device_id}")
    elif cmd in ("revoke", "wipe"):
        order_id = revoke_device(db, args.device_id, wipe=cmd == "wipe")
        print(f"revoked {args.device_id}" + (f"; wipe order {order_id}" if order_id else ""))
    else:
        print(f"logout order {logout_device(db, args.device_id)} for {args.device_id}")
    return 0


def _run_audit(db: Database, args: argparse.Namespace) -> int:
    conn = db.connection()
    if args.audit_command == "export":
        for entry in iter_entries(conn):
            sys.stdout.write(json.dumps(entry, separators=(",", ":")) + "\n")
        return 0
    report = verify_chain(conn, expect_head=args.expect_head)
    if report.ok:
        print(f"audit chain OK: {report.entries} entries, head {report.head}")
        return 0
    print(f"audit chain BROKEN at entry {report.first_bad_seq}: {report.problem} "
          f"({report.entries} entries verified before it)", file=sys.stderr)
    return 1


def run_admin(args: argparse.Namespace) -> int:
    try:
        db = open_database(args.data_dir)
        cmd = args.admin_command
        if cmd == "info":
            from server_stub.tls import ensure_tls

            files = ensure_tls(args.data_dir)
            print(f"data directory: {args.data_dir}")
            print(f"database:       {db.path}")
            print(f"CA to pin:      {files.ca_cert}")
            return 0
        if cmd == "user":
            return _run_user(db, args)
        if cmd == "device":
            return _run_device(db, args)
        if cmd == "audit":
            return _run_audit(db, args)
        if cmd == "seed-demo":
            users = seed_demo(db)
            if args.json:
                print(json.dumps(users))
            else:
                for u in users:
                    print(f"{u['username']:<14} {u['role']:<11} {u['password']}  "
                          f"TOTP {u['totp_secret']}")
            return 0
        handler = getattr(args, "handler", None)
        if handler is not None:
            return int(handler(db, args))
        return 2
    except AdminRefused as exc:
        print(f"refused: {exc}", file=sys.stderr)
        return 1

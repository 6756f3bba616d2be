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
from server_stub.crud import device_admin
from server_stub.crud import devices as devices_crud
from server_stub.crud import sessions as sessions_crud
from server_stub.crud import users as users_crud
from server_stub.crud.audit import append_audit
from server_stub.crud.device_admin import Actor, DeviceAdminRefused

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


CLI_ACTOR = Actor(user_id=None, device_id=None, source=SOURCE)


def _device_op(db: Database, op, device_id: str, **kwargs):
    try:
        with db.transaction() as conn:
            return op(conn, device_id, CLI_ACTOR, **kwargs)
    except DeviceAdminRefused as exc:
        raise AdminRefused(str(exc)) from None


def approve_device(db: Database, device_id: str) -> None:
    _device_op(db, device_admin.approve, device_id)


def revoke_device(db: Database, device_id: str, *, wipe: bool) -> str | None:
    """Revoke (the device is told ``device_revoked`` and must wipe); with ``wipe`` also
    issue a wipe order the device acknowledges. Returns the order id."""
    return _device_op(db, device_admin.revoke, device_id, wipe=wipe)


def logout_device(db: Database, device_id: str) -> str:
    return _device_op(db, device_admin.logout, device_id)


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

    add_audit_commands(sub)

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


# --- audit: verify, export, review, alerts, report, checkpoint, purge, policy -------------

def _when(text: str) -> int:
    """A time for --from/--to: milliseconds since the epoch, or an ISO date/time (UTC if no
    zone is given)."""
    import datetime as dt

    if text.isdigit():
        return int(text)
    try:
        moment = dt.datetime.fromisoformat(text)
    except ValueError:
        raise AdminRefused(f"not a time: {text!r} (use 2026-11-01 or 2026-11-01T08:00)") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.UTC)
    return int(moment.timestamp() * 1000)


def _add_filters(p: argparse.ArgumentParser) -> None:
    p.add_argument("--user", help="username or user id (actor, or the user acted upon)")
    p.add_argument("--device", help="device id")
    p.add_argument("--patient", help="a consult room id (one consult is one patient's)")
    p.add_argument("--room", help="consult room id")
    p.add_argument("--action", help="action, or a prefix ending in * (client.file.*)")
    p.add_argument("--outcome", choices=("ok", "refused", "failed"))
    p.add_argument("--from", dest="from_", metavar="FROM", help="from (inclusive)")
    p.add_argument("--to", help="to (exclusive)")


def _filter(conn: sqlite3.Connection, args: argparse.Namespace):
    from server_stub.core.audit_query import AuditFilter, resolve_user

    user_id = None
    if getattr(args, "user", None):
        user_id = resolve_user(conn, args.user)
        if user_id is None:
            raise AdminRefused(f"no user {args.user!r}")
    if args.patient and args.room and args.patient != args.room:
        raise AdminRefused("--patient and --room name different rooms")
    return AuditFilter(
        user_id=user_id, device_id=args.device, room_id=args.patient or args.room,
        action=args.action, outcome=args.outcome,
        from_ms=_when(args.from_) if args.from_ else None,
        to_ms=_when(args.to) if args.to else None)


def _filter_params(flt) -> dict[str, object]:
    from dataclasses import asdict

    return {k: v for k, v in asdict(flt).items() if v is not None}


def export_audit(db: Database, fmt: str, flt, out, *, approval: int | None = None,
                 actor_user_id: str | None = None, source: str = SOURCE) -> int:
    """Write matching entries to ``out`` (a text file); the export is then audited. Under
    the policy's ``export_approval`` an approved request (``approval``) is needed, and its
    stored format and filter are what is exported."""
    from server_stub.core import audit_policy
    from server_stub.core.audit_export import export
    from server_stub.core.audit_query import AuditFilter, search, usernames

    request_id = None
    with db.transaction() as conn:
        policy = audit_policy.get_policy(conn)
        if policy.export_approval or approval is not None:
            if approval is None:
                raise AdminRefused("audit exports need an approved request (policy "
                                   "export_approval): pass --approval ID")
            try:
                req = audit_policy.take_export(conn, approval, user_id=None)
            except audit_policy.PolicyRefused as exc:
                raise AdminRefused(exc.message) from None
            fmt = str(req.params["format"])
            flt = AuditFilter(**{k: v for k, v in req.params.items() if k != "format"})
            request_id = approval
    conn = db.connection()
    count = 0

    def counted():
        nonlocal count
        for entry in search(conn, flt):
            count += 1
            yield entry

    for chunk in export(fmt, counted(), usernames(conn)):
        out.write(chunk)
    out.flush()
    with db.transaction() as wconn:
        detail: dict[str, object] = {"format": fmt, "entries": count, **_filter_params(flt)}
        if request_id is not None:
            detail["request_id"] = request_id
        append_audit(wconn, actor_user_id=actor_user_id, device_id=None, action="audit.export",
                     object_type="audit_log", object_id=None, outcome="ok", source=source,
                     detail=detail)
    return count


def sign_off_break_glass(db: Database, entry_id: int, auditor: str, note: str | None, *,
                         decision: str) -> None:
    """The CLI's sign-off of a break-glass entry (the API's POST /v1/break_glass/{id}/review
    does the same for a signed-in auditor): only a user with the auditor role."""
    from server_stub.crud import grants as grants_crud
    from server_stub.crud.rooms import Refused

    with db.transaction() as conn:
        user = _user(conn, users_crud.normalize_username(auditor))
        if user.role != "auditor" or user.disabled:
            raise AdminRefused(f"{user.username} is not an enabled auditor")
        try:
            grants_crud.review_break_glass(conn, entry_id, reviewer=user.id,
                                           decision=decision, note=note, now_ms=_now())
        except Refused as exc:
            raise AdminRefused(str(exc)) from None
        append_audit(conn, actor_user_id=user.id, device_id=None, action="break_glass.review",
                     object_type="break_glass", object_id=str(entry_id), outcome="ok",
                     source=SOURCE, detail={"decision": decision})


def _now() -> int:
    from server_stub.core.security import now_ms

    return now_ms()


def add_audit_commands(sub: argparse._SubParsersAction) -> None:
    audit = sub.add_parser("audit", help="verify, review, export the audit log; reports")
    asub = audit.add_subparsers(dest="audit_command", required=True, metavar="ACTION")
    verify = asub.add_parser("verify", help="check the hash chain and signed checkpoints; "
                                            "names the first bad entry")
    verify.add_argument("--expect-head", help="a '<seq>:<hash>' head recorded earlier")
    verify.add_argument("--devices", action="store_true",
                        help="also check every device's own chain (signatures, gaps)")
    export = asub.add_parser("export", help="export entries (default JSON lines to stdout)")
    export.add_argument("--format", choices=("csv", "jsonl", "fhir"), default="jsonl")
    export.add_argument("--out", type=Path, help="write to this file (0600) instead of stdout")
    export.add_argument("--approval", type=int, help="an approved export request's id")
    _add_filters(export)
    review = asub.add_parser("review", help="list entries matching filters, or the "
                                            "break-glass review queue")
    _add_filters(review)
    review.add_argument("--break-glass", action="store_true",
                        help="show break-glass entries awaiting review")
    review.add_argument("--all", action="store_true", help="with --break-glass: reviewed too")
    review.add_argument("--limit", type=int, default=1000)
    sign = asub.add_parser("sign-off", help="sign off a break-glass entry as an auditor")
    sign.add_argument("entry_id", type=int)
    sign.add_argument("--as", dest="auditor", required=True, help="the auditor's username")
    sign.add_argument("--decision", required=True, choices=("approved", "flagged"),
                      help="approved: the access was justified; flagged: follow it up")
    sign.add_argument("--note", help="review note (no patient data)")
    alerts = asub.add_parser("alerts", help="anomaly alerts for a period (rules: "
                                            "docs/admin-guide.md)")
    alerts.add_argument("--from", dest="from_", metavar="FROM")
    alerts.add_argument("--to")
    alerts.add_argument("--utc-offset", type=int, default=0,
                        help="working hours' time zone, minutes east of UTC")
    alerts.add_argument("--json", action="store_true")
    report = asub.add_parser("report", help="compliance report (PDF) for a period")
    report.add_argument("--from", dest="from_", metavar="FROM", required=True)
    report.add_argument("--to", required=True)
    report.add_argument("--out", type=Path, required=True)
    asub.add_parser("checkpoint", help="sign the current head now")
    purge = asub.add_parser("purge", help="delete entries past retention (>= 6 years), "
                                          "keeping the rest verifiable from a checkpoint")
    purge.add_argument("--days", type=int, default=None,
                       help="retention in days (default 2196, minimum 2190)")
    policy = asub.add_parser("policy", help="show or set the two-person rules")
    policy.add_argument("--export-approval", choices=("on", "off"))
    policy.add_argument("--policy-approval", choices=("on", "off"))
    asub.add_parser("requests", help="list export and policy requests")


def _open_out(path: Path | None):
    import os

    if path is None:
        return sys.stdout
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    return os.fdopen(fd, "w", encoding="utf-8", newline="")


def _run_audit(db: Database, args: argparse.Namespace) -> int:
    from server_stub.core import audit_checkpoint as checkpoints
    from server_stub.core import audit_policy
    from server_stub.core.audit_anomaly import Thresholds, find_alerts
    from server_stub.core.audit_devices import verify_devices
    from server_stub.core.audit_export import iso_utc
    from server_stub.core.audit_query import search, usernames

    data_dir = db.path.parent
    conn = db.connection()
    cmd = args.audit_command
    if cmd == "verify":
        report = checkpoints.verify_log(db, data_dir, expect_head=args.expect_head)
        status = 0
        if not report.ok:
            print(f"audit chain BROKEN at entry {report.first_bad_seq}: {report.problem} "
                  f"({report.entries} entries verified before it)", file=sys.stderr)
            status = 1
        if args.devices:
            for dev in verify_devices(conn):
                print(f"device {dev.device_id}: {dev.summary()}",
                      file=sys.stdout if dev.ok else sys.stderr)
                status = status if dev.ok else 1
        if report.ok:
            start = f" from checkpoint at entry {report.anchor_seq}," if report.anchor_seq else ""
            print(f"audit chain OK:{start} {report.entries} entries, {report.checkpoints} "
                  f"signed checkpoints, head {report.head}")
        return status
    if cmd == "export":
        out = _open_out(args.out)
        try:
            n = export_audit(db, args.format, _filter(conn, args), out, approval=args.approval)
        finally:
            if out is not sys.stdout:
                out.close()
        if args.out is not None:
            print(f"exported {n} entries as {args.format} to {args.out}")
        return 0
    if cmd == "review":
        names = usernames(conn)
        if args.break_glass:
            from server_stub.crud import grants as grants_crud

            for e in grants_crud.list_break_glass(conn, unreviewed_only=not args.all,
                                                  limit=args.limit):
                state = (f"{(e.decision or 'reviewed').upper()} {iso_utc(e.reviewed_ms)} by "
                         f"{names.get(e.reviewed_by or '', '?')}" if e.reviewed_ms
                         else "AWAITING REVIEW")
                print(f"#{e.id} {iso_utc(e.created_ms)} {names.get(e.user_id, e.user_id)} "
                      f"room {e.room_id} device {e.device_id}: {state}")
                print(f"    reason: {e.reason}")
            return 0
        for e in search(conn, _filter(conn, args), limit=args.limit):
            detail = json.dumps(e["detail"], sort_keys=True) if e["detail"] else ""
            print(f"{e['seq']:>7} {iso_utc(e['ts_ms'])} "
                  f"{names.get(e['actor_user_id'] or '', e['actor_user_id'] or '-'):<16} "
                  f"{e['device_id'] or '-':<22} {e['action']:<24} "
                  f"{(e['object_type'] or '') + ':' + (e['object_id'] or ''):<30} "
                  f"{e['outcome']:<7} {e['source']} {detail}")
        return 0
    if cmd == "sign-off":
        sign_off_break_glass(db, args.entry_id, args.auditor, args.note,
                             decision=args.decision)
        print(f"break-glass entry {args.entry_id} signed off as {args.decision} "
              f"by {args.auditor}")
        return 0
    if cmd == "alerts":
        found = find_alerts(conn, from_ms=_when(args.from_) if args.from_ else None,
                            to_ms=_when(args.to) if args.to else None,
                            th=Thresholds(utc_offset_minutes=args.utc_offset))
        names = usernames(conn)
        for a in found:
            if args.json:
                print(json.dumps({**a.to_dict(), "username": names.get(a.user_id or "")}))
            else:
                print(f"{iso_utc(a.ts_ms)} {a.rule:<14} "
                      f"{names.get(a.user_id or '', a.user_id or '-'):<16} "
                      f"entries {a.first_seq}-{a.last_seq}: {a.message}")
        if not args.json:
            print(f"{len(found)} alert(s)")
        return 0
    if cmd == "report":
        from server_stub.core.audit_report import gather, render_pdf

        data = gather(db, data_dir, _when(args.from_), _when(args.to))
        pdf = render_pdf(data)
        with _open_out(args.out) as f:
            f.buffer.write(pdf)
        with db.transaction() as wconn:
            append_audit(wconn, actor_user_id=None, device_id=None, action="audit.report",
                         object_type="audit_log", object_id=None, outcome="ok", source=SOURCE,
                         detail={"from_ms": data.from_ms, "to_ms": data.to_ms,
                                 "alerts": len(data.alerts), "bytes": len(pdf)})
        print(f"wrote {args.out} ({len(pdf)} bytes): {data.chain}")
        return 0
    if cmd == "checkpoint":
        cp = checkpoints.create_checkpoint(db, data_dir)
        if cp is None:
            print("nothing to sign: the head is already checkpointed (or the log is empty)")
        else:
            print(f"checkpoint {cp.id}: entry {cp.seq} hash {cp.entry_hash} "
                  f"signature {cp.signature} key {cp.public_key}")
        return 0
    if cmd == "purge":
        days = args.days if args.days is not None else checkpoints.DEFAULT_RETENTION_DAYS
        try:
            result = checkpoints.purge(db, data_dir, retention_days=days)
        except checkpoints.PurgeRefused as exc:
            raise AdminRefused(str(exc)) from None
        if result.purged == 0:
            print(f"nothing older than {days} days")
        else:
            print(f"purged {result.purged} entries through {result.through_seq}; "
                  f"verification now starts at signed checkpoint {result.checkpoint.id}"
                  if result.checkpoint else "")
        return 0
    if cmd == "policy":
        current = audit_policy.get_policy(conn)
        if args.export_approval is None and args.policy_approval is None:
            print(json.dumps(current.__dict__, sort_keys=True))
            return 0
        new = audit_policy.AuditPolicy(
            export_approval=(current.export_approval if args.export_approval is None
                             else args.export_approval == "on"),
            policy_approval=(current.policy_approval if args.policy_approval is None
                             else args.policy_approval == "on"))
        try:
            applied, _ = audit_policy.change_policy(db, new, user_id=None, device_id=None,
                                                    source=SOURCE)
        except audit_policy.PolicyRefused as exc:
            raise AdminRefused(exc.message) from None
        print(json.dumps(applied.__dict__, sort_keys=True))
        return 0
    names = usernames(conn)
    for r in audit_policy.list_requests(conn):
        print(f"#{r.id} {r.kind:<13} {r.state:<8} by {names.get(r.requested_by, '?'):<16} "
              f"{iso_utc(r.requested_ms)} {json.dumps(r.params, sort_keys=True)}")
    return 0


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

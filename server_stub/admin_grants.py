"""``admin grant add|revoke|list``: an administrator's time-limited consult grants.

Runs on the data directory like the rest of the admin CLI. The membership event it writes
reaches member devices at their next sync (this process cannot push to the server's
sockets). Exit codes: 0 done, 1 refused, 2 usage.
"""

from __future__ import annotations

import argparse
import sys
import time

from server_stub.core.db import Database
from server_stub.crud import grants, rooms
from server_stub.crud import users as users_crud
from server_stub.crud.audit import append_audit
from server_stub.crud.rooms import Refused

SOURCE = "admin-cli"
MAX_GRANT_HOURS = 24 * 366


def add_grant_commands(sub: argparse._SubParsersAction) -> None:
    grant = sub.add_parser("grant", help="add, revoke, list time-limited consult grants")
    gsub = grant.add_subparsers(dest="grant_command", required=True, metavar="ACTION")
    add = gsub.add_parser("add", help="make a user a member of a consult until a deadline")
    add.add_argument("--room", required=True, help="room (consult) id")
    add.add_argument("--user", required=True, help="username")
    add.add_argument("--role", choices=rooms.INVITABLE_ROLES, default="member")
    add.add_argument("--hours", type=float, required=True,
                     help=f"grant lifetime in hours (0 < hours <= {MAX_GRANT_HOURS})")
    revoke = gsub.add_parser("revoke", help="end a user's membership of a consult now")
    revoke.add_argument("--room", required=True)
    revoke.add_argument("--user", required=True, help="username")
    lst = gsub.add_parser("list", help="members of a consult with their grant deadlines")
    lst.add_argument("--room", required=True)
    grant.set_defaults(handler=lambda db, args: run_grant_command(args, db))


def _user_id(db: Database, username: str) -> str:
    user = users_crud.get_user_by_username(db.connection(),
                                           users_crud.normalize_username(username))
    if user is None:
        raise Refused(404, "unknown_user", f"no user named {username!r}")
    return user.id


def run_grant_command(args: argparse.Namespace, db: Database, *, now_ms: int | None = None
                      ) -> int:
    now = int(time.time() * 1000) if now_ms is None else now_ms
    try:
        if args.grant_command == "list":
            conn = db.connection()
            if rooms.get_room(conn, args.room) is None:
                raise Refused(404, "not_found", "no such consult")
            names = {u.id: u.username for u in users_crud.list_users(conn)}
            for m in rooms.members_of(conn, args.room, now):
                until = "no expiry" if m.expires_ms is None else time.strftime(
                    "until %Y-%m-%d %H:%M:%S UTC", time.gmtime(m.expires_ms / 1000))
                flag = " break-glass" if m.break_glass_id is not None else ""
                print(f"{names.get(m.user_id, m.user_id):<24} {m.role:<8} {m.state:<7} "
                      f"{until}{flag}")
            return 0
        user_id = _user_id(db, args.user)
        if args.grant_command == "add":
            if not 0 < args.hours <= MAX_GRANT_HOURS:
                print(f"refused: --hours must be in (0, {MAX_GRANT_HOURS}]", file=sys.stderr)
                return 2
            expires = now + int(args.hours * 3_600_000)
            with db.transaction() as conn:
                grants.grant(conn, args.room, target_user_id=user_id, role=args.role,
                             expires_ms=expires, granted_by=None, now_ms=now)
                append_audit(conn, actor_user_id=None, device_id=None, action="room.grant",
                             object_type="room", object_id=args.room, outcome="ok",
                             source=SOURCE, detail={"user_id": user_id, "role": args.role,
                                                    "expires_ms": expires})
            print(f"granted {args.user} {args.role} in {args.room} until "
                  + time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(expires / 1000)))
            return 0
        with db.transaction() as conn:
            grants.revoke(conn, args.room, target_user_id=user_id, revoked_by=None, now_ms=now)
            append_audit(conn, actor_user_id=None, device_id=None, action="room.revoke",
                         object_type="room", object_id=args.room, outcome="ok",
                         source=SOURCE, detail={"user_id": user_id})
        print(f"revoked {args.user} from {args.room}")
        return 0
    except Refused as exc:
        print(f"refused: {exc.message}", file=sys.stderr)
        return 1

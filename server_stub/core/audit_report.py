"""The compliance report for a period: gathered from the audit log and the current tables,
rendered as PDF with fpdf2 (pure Python).

Sections: chain status and checkpoints; users; devices; grants; break-glass (with review
state); wipes; failed logins; anomaly alerts; retention purges. Identifiers and codes only
(break-glass reasons may hold PHI and are left out: the review queue shows them).
"""

from __future__ import annotations

import datetime as dt
import json
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from server_stub.core.audit_anomaly import Alert, find_alerts
from server_stub.core.audit_checkpoint import list_checkpoints, verify_log
from server_stub.core.audit_devices import verify_devices
from server_stub.core.audit_export import iso_utc
from server_stub.core.audit_query import AuditFilter, search, usernames
from server_stub.core.db import Database

GRANT_ACTIONS = ("room.grant", "room.revoke", "room.grant_expired", "room.invite",
                 "room.remove", "room.join", "room.leave")
# A remote wipe leaves up to three entries (IT's order, the device's own last entry, its
# signed acknowledgement); the report shows one row per order with the other two folded in.
WIPE_ACTIONS = ("device.wipe", "device.wipe_ack", "client.wipe.local")


@dataclass
class ReportData:
    from_ms: int
    to_ms: int
    generated_ms: int
    chain: str
    checkpoints: list[list[str]] = field(default_factory=list)
    users: list[list[str]] = field(default_factory=list)
    devices: list[list[str]] = field(default_factory=list)
    grants: list[list[str]] = field(default_factory=list)
    break_glass: list[list[str]] = field(default_factory=list)
    wipes: list[list[str]] = field(default_factory=list)
    failed_logins: list[list[str]] = field(default_factory=list)
    failed_total: int = 0
    alerts: list[Alert] = field(default_factory=list)
    purges: list[list[str]] = field(default_factory=list)
    device_chains: list[list[str]] = field(default_factory=list)  # broken ones only
    device_chains_ok: int = 0
    entries_in_period: int = 0
    names: dict[str, str] = field(default_factory=dict)


def _day(ts: int | None) -> str:
    return iso_utc(ts)[:16].replace("T", " ") if ts else "-"


def gather(db: Database, data_dir: Path, from_ms: int, to_ms: int,
           now: int | None = None) -> ReportData:
    conn = db.connection()
    names = usernames(conn)
    report = verify_log(db, data_dir)
    chain = (f"verified: {report.entries} entries, head {report.head.split(':')[0]},"
             f" {report.checkpoints} signed checkpoints" if report.ok else
             f"BROKEN at entry {report.first_bad_seq}: {report.problem}")
    data = ReportData(from_ms, to_ms,
                      now or int(dt.datetime.now(dt.UTC).timestamp() * 1000), chain,
                      names=names)
    period = AuditFilter(from_ms=from_ms, to_ms=to_ms)
    data.entries_in_period = conn.execute(
        "SELECT COUNT(*) FROM audit_log WHERE ts_ms >= ? AND ts_ms < ?",
        (from_ms, to_ms)).fetchone()[0]
    data.checkpoints = [[str(c.id), str(c.seq), _day(c.created_ms),
                         "purge cut" if c.purge_cut else "periodic", c.entry_hash[:16]]
                        for c in list_checkpoints(conn) if from_ms <= c.created_ms < to_ms]
    user_changes = Counter(e["object_id"] for e in search(conn, AuditFilter(
        action="user.*", from_ms=from_ms, to_ms=to_ms)))
    for r in conn.execute("SELECT id, username, role, disabled, created_ms FROM users"
                          " ORDER BY username"):
        data.users.append([r[1], r[2], "disabled" if r[3] else "enabled", _day(r[4]),
                           str(user_changes.get(r[0], 0))])
    for r in conn.execute("SELECT device_id, user_id, display_name, state, enroll_ts_ms,"
                          " last_seen_ms FROM devices ORDER BY user_id, enroll_ts_ms"):
        data.devices.append([r[0][:12], names.get(r[1], "?"), r[2][:24], r[3], _day(r[4]),
                             _day(r[5])])
    wipes = _WipeRows()
    for e in search(conn, period):
        action = e["action"]
        who = names.get(e["actor_user_id"] or "", e["source"])
        if action in GRANT_ACTIONS:
            detail = e["detail"] or {}
            subject = detail.get("user_id") or detail.get("subject_user_id") or ""
            data.grants.append([_day(e["ts_ms"]), action, who, str(e["object_id"])[:14],
                                names.get(subject, str(subject))[:20], e["outcome"]])
        elif action in WIPE_ACTIONS:
            wipes.add(e, who)
        elif action == "audit.purge":
            d = e["detail"] or {}
            data.purges.append([_day(e["ts_ms"]), str(d.get("through_seq")),
                                str(d.get("entries")), _day(d.get("cutoff_ms")),
                                str(d.get("retention_days"))])
    data.wipes = wipes.rows()
    failures: Counter[tuple[str, str]] = Counter()
    for e in search(conn, AuditFilter(action="login", outcome="failed", from_ms=from_ms,
                                      to_ms=to_ms)):
        actor = e["actor_user_id"]
        failures[(names.get(actor, actor) if actor else "(unknown name)", e["source"])] += 1
    data.failed_total = sum(failures.values())
    data.failed_logins = [[u, s, str(n)] for (u, s), n in failures.most_common(30)]
    for r in conn.execute("SELECT id, room_id, user_id, created_ms, reviewed_ms, reviewed_by,"
                          " decision FROM break_glass WHERE created_ms >= ? AND created_ms < ?"
                          " ORDER BY id", (from_ms, to_ms)):
        # A row reviewed before the decision field (migration 5) without a tag: "reviewed".
        decision = (r[6] or "reviewed") if r[4] else "-"
        data.break_glass.append([str(r[0]), r[1][:14], names.get(r[2], "?"), _day(r[3]),
                                 _day(r[4]) if r[4] else "NOT REVIEWED",
                                 names.get(r[5] or "", "-"), decision])
    data.alerts = find_alerts(conn, from_ms=from_ms, to_ms=to_ms)
    for dev in verify_devices(conn):
        if dev.ok:
            data.device_chains_ok += 1
        else:
            data.device_chains.append([dev.device_id[:14], names.get(dev.user_id or "", "?"),
                                       str(dev.entries), dev.summary()[8:]])
    return data


class _WipeRows:
    """One row per wipe: keyed by the order id that IT's order, the device's ``wipe.local``
    and its acknowledgement all carry (a device's own wipe without an order keys by seq)."""

    def __init__(self) -> None:
        self._rows: dict[str, list[str]] = {}

    def add(self, e: dict[str, Any], who: str) -> None:
        detail = e["detail"] or {}
        key = str(detail.get("order_id") or f"seq-{e['seq']}")
        device = str(e["object_id"] if e["action"] == "device.wipe" else e["device_id"])
        row = self._rows.setdefault(key, ["-", device[:14], "-", "-", "NOT ACKNOWLEDGED"])
        if e["action"] == "device.wipe":
            row[0], row[2] = _day(e["ts_ms"]), who
        elif e["action"] == "client.wipe.local":
            row[3] = f"{detail.get('reason', '?')}, entry {detail.get('device_seq', '?')}"
        elif e["outcome"] == "ok":
            row[4] = _day(e["ts_ms"])

    def rows(self) -> list[list[str]]:
        return list(self._rows.values())


def _latin1(text: str) -> str:
    return text.encode("latin-1", "replace").decode("latin-1")


def render_pdf(data: ReportData) -> bytes:
    from fpdf import FPDF

    pdf = FPDF(orientation="P", unit="mm", format="A4")
    pdf.set_auto_page_break(auto=True, margin=15)
    pdf.set_title("SafeConsult compliance report")
    pdf.alias_nb_pages()

    def footer() -> None:
        pdf.set_y(-12)
        pdf.set_font("Helvetica", "", 8)
        pdf.cell(0, 5, f"SafeConsult compliance report - page {pdf.page_no()}/{{nb}}",
                 align="C")

    pdf.footer = footer  # type: ignore[method-assign]
    pdf.add_page()
    pdf.set_font("Helvetica", "B", 16)
    pdf.cell(0, 10, "SafeConsult compliance report", new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("Helvetica", "", 10)
    for label, value in (("Period (UTC)", f"{_day(data.from_ms)}  to  {_day(data.to_ms)}"),
                         ("Generated", _day(data.generated_ms)),
                         ("Audit chain", data.chain),
                         ("Entries in period", str(data.entries_in_period)),
                         ("Device chains", f"{data.device_chains_ok} verified, "
                                           f"{len(data.device_chains)} with gaps or errors"),
                         ("Failed logins", str(data.failed_total)),
                         ("Alerts", str(len(data.alerts)))):
        pdf.set_font("Helvetica", "B", 10)
        pdf.cell(38, 6, label)
        pdf.set_font("Helvetica", "", 10)
        pdf.multi_cell(0, 6, _latin1(value), new_x="LMARGIN", new_y="NEXT")

    def section(title: str, headers: list[str], widths: list[int], rows: list[list[str]],
                empty: str = "none in this period") -> None:
        pdf.ln(3)
        pdf.set_font("Helvetica", "B", 12)
        pdf.cell(0, 8, _latin1(f"{title} ({len(rows)})"), new_x="LMARGIN", new_y="NEXT")
        if not rows:
            pdf.set_font("Helvetica", "I", 9)
            pdf.cell(0, 6, empty, new_x="LMARGIN", new_y="NEXT")
            return
        pdf.set_font("Helvetica", "B", 8)
        pdf.set_fill_color(220, 226, 235)
        for h, w in zip(headers, widths, strict=True):
            pdf.cell(w, 6, h, border=1, fill=True)
        pdf.ln()
        pdf.set_font("Helvetica", "", 8)
        for row in rows:
            for value, w in zip(row, widths, strict=True):
                text = _latin1(str(value))
                while text and pdf.get_string_width(text) > w - 2:
                    text = text[:-1]
                pdf.cell(w, 5, text, border=1)
            pdf.ln()

    section("Device audit chains with gaps or errors", ["Device", "User", "Entries", "What"],
            [30, 30, 16, 104], data.device_chains, "every device chain verifies")
    section("Users", ["Username", "Role", "Status", "Created", "Changes in period"],
            [50, 30, 25, 40, 35], data.users, "no users")
    section("Devices", ["Device", "User", "Name", "State", "Enrolled", "Last seen"],
            [28, 30, 40, 18, 32, 32], data.devices, "no devices")
    section("Grants and membership changes", ["Time", "Action", "By", "Room", "User", "Outcome"],
            [32, 36, 30, 30, 32, 20], data.grants)
    section("Break-glass access",
            ["Id", "Room", "User", "Time", "Reviewed", "Reviewer", "Decision"],
            [12, 28, 28, 30, 30, 30, 22], data.break_glass)
    section("Wipes", ["Ordered", "Device", "By", "Device's last entry", "Acknowledged"],
            [34, 34, 36, 42, 34], data.wipes)
    section("Failed logins (by user and source)", ["User", "Source", "Count"], [70, 70, 40],
            data.failed_logins)
    section("Anomaly alerts", ["Time", "Rule", "User", "Count", "Entries", "What"],
            [30, 24, 26, 12, 22, 66],
            [[_day(a.ts_ms), a.rule, data.names.get(a.user_id or "", a.user_id or "-"),
              str(a.count), f"{a.first_seq}-{a.last_seq}", a.message] for a in data.alerts])
    section("Retention purges", ["Time", "Through entry", "Entries", "Cutoff", "Days"],
            [36, 30, 26, 36, 24], data.purges)
    section("Signed checkpoints", ["Id", "Entry", "Signed", "Kind", "Hash (prefix)"],
            [14, 22, 36, 28, 50], data.checkpoints)
    return bytes(pdf.output())


def summary_json(data: ReportData) -> str:
    return json.dumps({"from_ms": data.from_ms, "to_ms": data.to_ms, "chain": data.chain,
                       "users": len(data.users), "devices": len(data.devices),
                       "grants": len(data.grants), "break_glass": len(data.break_glass),
                       "wipes": len(data.wipes), "failed_logins": data.failed_total,
                       "alerts": len(data.alerts), "purges": len(data.purges),
                       "device_chains_broken": len(data.device_chains)})


def alert_rows(alerts: list[Alert], names: dict[str, str]) -> list[dict[str, Any]]:
    return [{**a.to_dict(), "username": names.get(a.user_id or "")} for a in alerts]

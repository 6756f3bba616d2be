"""Access review: filters, anomaly rules (fire on synthetic scenarios, quiet on a normal
day), exports (CSV, JSONL that re-hashes, FHIR validated with fhir.resources) and the PDF
compliance report (rendered to PNG with pdftoppm)."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import os
import shutil
import subprocess

import pytest

from server_stub.core import audit_report
from server_stub.core.audit_anomaly import Thresholds, find_alerts
from server_stub.core.audit_export import export
from server_stub.core.audit_query import AuditFilter, search
from server_stub.crud import audit as audit_crud
from tests.server.test_audit_chain import _cli
from tests.support.clients import create_user, server_db

MONDAY = int(dt.datetime(2026, 11, 16, tzinfo=dt.UTC).timestamp() * 1000)
H, M = 3_600_000, 60_000


class Log:
    """Appends entries at chosen times (the clock append_audit reads is patched)."""

    def __init__(self, server, monkeypatch) -> None:
        self.db = server_db(server)
        self.monkeypatch = monkeypatch

    def add(self, ts: int, action: str, *, user: str | None = None, device: str | None = None,
            outcome: str = "ok", source: str = "10.1.1.20", object_type: str | None = None,
            object_id: str | None = None, detail: dict | None = None) -> int:
        self.monkeypatch.setattr(audit_crud, "now_ms", lambda: ts)
        with self.db.transaction() as conn:
            return audit_crud.append_audit(
                conn, actor_user_id=user, device_id=device, action=action,
                object_type=object_type, object_id=object_id, outcome=outcome, source=source,
                detail=detail)


def normal_day(log: Log, day_ms: int = MONDAY) -> None:
    """Five clinicians' ordinary Monday: logins in the morning from their usual networks,
    a typo or two, a handful of downloads, an export, a print."""
    for i in range(5):
        user, device, src = f"u{i}", f"d{i}", f"10.1.{i}.20"
        t = day_ms + 8 * H + i * 7 * M
        if i % 2 == 0:  # a mistyped password first
            log.add(t - M, "login", user=user, outcome="failed", source=src,
                    detail={"reason": "credentials", "known_user": True})
        log.add(t, "login", user=user, device=device, source=src, object_type="session",
                object_id=f"s{i}")
        for k in range(6):
            log.add(t + (k + 1) * 40 * M, "client.file.download", user=user, device=device,
                    source=src, object_type="consult", object_id=f"room-{k % 3}")
        log.add(t + 5 * H, "client.file.export", user=user, device=device, source=src,
                object_type="consult", object_id="room-1", detail={"format": "pdf"})
        log.add(t + 6 * H, "client.file.print", user=user, device=device, source=src,
                object_type="consult", object_id="room-2", detail={"pages": 2})
        log.add(t + 9 * H, "logout", user=user, device=device, source=src)


def test_normal_traffic_raises_no_alert(server, monkeypatch):
    log = Log(server, monkeypatch)
    normal_day(log)
    normal_day(log, MONDAY + 24 * H)
    assert find_alerts(server_db(server).connection()) == []


def test_each_rule_fires_on_its_scenario(server, monkeypatch):
    log = Log(server, monkeypatch)
    normal_day(log)
    day2 = MONDAY + 24 * H
    # bulk: 25 downloads in 5 minutes.
    bulk = [log.add(day2 + 10 * H + k * 12_000, "client.file.download", user="u1",
                    device="d1", source="10.1.1.20", object_type="consult",
                    object_id=f"room-{k}") for k in range(25)]
    # out of hours: a login at 02:30 on Tuesday, and weekend work.
    night = log.add(day2 + 2 * H + 30 * M, "login", user="u2", device="d2",
                    source="10.1.2.20")
    weekend = log.add(MONDAY + 5 * 24 * H + 11 * H, "client.image.open", user="u3",
                      device="d3", source="10.1.3.20", object_type="consult",
                      object_id="room-1")
    # break-glass.
    bg = log.add(day2 + 14 * H, "room.break_glass", user="u4", device="d4",
                 source="10.1.4.20", object_type="room", object_id="room-9",
                 detail={"flagged": True})
    # failed logins: 6 in 2 minutes for one user; a spray of unknown names from one source.
    burst = [log.add(day2 + 15 * H + k * 20_000, "login", user="u0", outcome="failed",
                     source="10.1.0.20", detail={"reason": "credentials", "known_user": True})
             for k in range(6)]
    spray = [log.add(day2 + 16 * H + k * 10_000, "login", outcome="failed",
                     source="203.0.113.7", detail={"reason": "credentials",
                                                   "known_user": False}) for k in range(5)]
    # new network: d0 shows up from another network.
    moved = log.add(day2 + 17 * H, "client.file.download", user="u0", device="d0",
                    source="192.168.77.5", object_type="consult", object_id="room-1")
    alerts = find_alerts(server_db(server).connection())
    got = {(a.rule, a.first_seq, a.last_seq) for a in alerts}
    assert got == {
        ("bulk_access", bulk[0], bulk[19]),
        ("out_of_hours", night, night),
        ("out_of_hours", weekend, weekend),
        ("break_glass", bg, bg),
        ("failed_logins", burst[0], burst[4]),
        ("failed_logins", spray[0], spray[4]),
        ("new_network", moved, moved),
    }, alerts
    # A period selects alerts; a time zone moves working hours (02:30 UTC is 09:30 at +7).
    later = find_alerts(server_db(server).connection(), from_ms=day2 + 12 * H)
    assert {(a.rule, a.first_seq) for a in later} == {
        ("break_glass", bg), ("failed_logins", burst[0]), ("failed_logins", spray[0]),
        ("new_network", moved), ("out_of_hours", weekend)}
    shifted = find_alerts(server_db(server).connection(), from_ms=day2, to_ms=day2 + 9 * H,
                          th=Thresholds(utc_offset_minutes=7 * 60))
    assert "out_of_hours" not in {a.rule for a in shifted}
    # The CLI shows the same.
    out = _cli(server.data_dir, "audit", "alerts", "--json")
    assert out.returncode == 0, out.stderr
    assert sorted(json.loads(line)["rule"] for line in out.stdout.splitlines()) == sorted(
        a.rule for a in alerts)


def test_filters_select_by_user_device_room_action_time(server, monkeypatch):
    log = Log(server, monkeypatch)
    normal_day(log)
    conn = server_db(server).connection()

    def seqs(**kw):
        return [e["seq"] for e in search(conn, AuditFilter(**kw))]

    all_rows = list(search(conn, AuditFilter()))
    by_user = seqs(user_id="u1")
    assert by_user and all(all_rows[s - 1]["actor_user_id"] == "u1" for s in by_user)
    assert seqs(device_id="d2") == [e["seq"] for e in all_rows if e["device_id"] == "d2"]
    room = seqs(room_id="room-1")
    assert room and all(all_rows[s - 1]["object_id"] == "room-1" for s in room)
    downloads = seqs(action="client.file.*")
    assert len(downloads) == 5 * 8
    assert seqs(action="login", outcome="failed") == [
        e["seq"] for e in all_rows if e["action"] == "login" and e["outcome"] == "failed"]
    window = seqs(from_ms=MONDAY + 9 * H, to_ms=MONDAY + 10 * H)
    assert window and all(MONDAY + 9 * H <= all_rows[s - 1]["ts_ms"] < MONDAY + 10 * H
                          for s in window)
    # The CLI: --patient is the consult room.
    out = _cli(server.data_dir, "audit", "review", "--patient", "room-1", "--action",
               "client.file.download", "--from", "2026-11-16T08:00", "--to", "2026-11-17")
    assert out.returncode == 0, out.stderr
    assert len(out.stdout.splitlines()) == len(seqs(
        room_id="room-1", action="client.file.download", from_ms=MONDAY + 8 * H,
        to_ms=MONDAY + 24 * H))


def test_exports_csv_jsonl_and_fhir_validate(server, monkeypatch):
    from fhir.resources.auditevent import AuditEvent
    from fhir.resources.bundle import Bundle

    log = Log(server, monkeypatch)
    normal_day(log)
    log.add(MONDAY + 20 * H, "room.break_glass", user="u4", device="d4",
            object_type="room", object_id="room-9", outcome="refused",
            detail={"code": "not_found"})
    conn = server_db(server).connection()
    rows = list(search(conn, AuditFilter()))
    names = {"u1": "alice"}
    text = "".join(export("csv", rows, names))
    table = list(csv.DictReader(io.StringIO(text)))
    assert len(table) == len(rows) and table[0]["seq"] == "1"
    assert {r["actor_username"] for r in table if r["actor_user_id"] == "u1"} == {"alice"}
    for line, row in zip("".join(export("jsonl", rows, names)).splitlines(), rows,
                         strict=True):
        entry = json.loads(line)
        assert audit_crud.entry_hash(entry) == entry["entry_hash"] == row["entry_hash"]
    bundle = json.loads("".join(export("fhir", rows, names)))
    parsed = Bundle.model_validate(bundle)
    assert len(parsed.entry) == len(rows)
    for item in bundle["entry"]:
        event = AuditEvent.model_validate(item["resource"])
        assert event.code.text
    last = bundle["entry"][-1]["resource"]
    assert last["outcome"]["code"]["code"] == "4"
    assert last["category"][0]["coding"][0]["code"] == "110113"  # security alert
    # The CLI writes each format, and each export is one audit entry.
    for fmt in ("csv", "jsonl", "fhir"):
        out = server.data_dir / f"export.{fmt}"
        result = _cli(server.data_dir, "audit", "export", "--format", fmt, "--out", str(out),
                      "--device", "d1")
        assert result.returncode == 0, result.stderr
        assert out.stat().st_mode & 0o777 == 0o600
    Bundle.model_validate_json((server.data_dir / "export.fhir").read_text())
    exports = [json.loads(r[0]) for r in conn.execute(
        "SELECT detail FROM audit_log WHERE action = 'audit.export' ORDER BY seq")]
    assert [e["format"] for e in exports] == ["csv", "jsonl", "fhir"]
    assert all(e["device_id"] == "d1" and e["entries"] > 0 for e in exports)


def test_compliance_report_renders(server, monkeypatch, tmp_path):
    log = Log(server, monkeypatch)
    alice = create_user(server, "alice", role="physician")
    normal_day(log)
    day2 = MONDAY + 24 * H
    log.add(day2 + 9 * H, "room.grant", device="d1", object_type="room", object_id="room-1",
            detail={"user_id": alice.user_id}, source="admin-cli")
    # One remote wipe: IT's order, the device's own last entry, its acknowledgement.
    log.add(day2 + 10 * H, "device.wipe", object_type="device", object_id="d3",
            source="admin-cli", detail={"order_id": "o-1"})
    log.add(day2 + 10 * H + 500, "client.wipe.local", device="d3",
            detail={"order_id": "o-1", "reason": "remote", "device_seq": 7})
    log.add(day2 + 10 * H + 900, "device.wipe_ack", device="d3", object_type="device",
            object_id="d3", detail={"order_id": "o-1", "audit_seq": 7})
    for k in range(6):
        log.add(day2 + 11 * H + k * 1000, "login", user=alice.user_id, outcome="failed",
                source="10.9.9.9", detail={"reason": "credentials", "known_user": True})
    log.add(day2 + 3 * H, "room.break_glass", user=alice.user_id, device="d9",
            object_type="room", object_id="room-5")
    monkeypatch.undo()
    # The break-glass review queue as the auditor left it: signed off either way, or not yet.
    with server_db(server).transaction() as conn:
        for bg_id, reviewed, decision in ((1, day2 + 5 * H, "flagged"),
                                          (2, day2 + 5 * H, "approved"), (3, None, None)):
            conn.execute(
                "INSERT INTO break_glass (id, room_id, user_id, reason, created_ms, expires_ms,"
                " reviewed_ms, reviewed_by, decision) VALUES (?, 'room-5', ?, 'r', ?, ?, ?, ?, ?)",
                (bg_id, alice.user_id, day2 + 3 * H, day2 + 4 * H, reviewed,
                 alice.user_id if reviewed else None, decision))
    data = audit_report.gather(server_db(server), server.data_dir, MONDAY, MONDAY + 7 * 24 * H)
    assert [(row[0], row[-1]) for row in data.break_glass] == [
        ("1", "flagged"), ("2", "approved"), ("3", "-")]
    assert data.break_glass[2][4] == "NOT REVIEWED"
    assert data.chain.startswith("verified")
    assert len(data.grants) == 1 and data.failed_total == 9
    assert data.wipes == [["2026-11-17 10:00", "d3", "admin-cli", "remote, entry 7",
                           "2026-11-17 10:00"]]
    # The synthetic client entries carry no device signature: every such chain is listed.
    assert len(data.device_chains) == 5 and data.device_chains_ok == 0
    assert data.device_chains[0][3] == "8 unsigned entries (server entries 4..11)"
    assert {a.rule for a in data.alerts} >= {"failed_logins", "break_glass", "out_of_hours"}
    pdf = audit_report.render_pdf(data)
    assert pdf.startswith(b"%PDF-")
    out = tmp_path / "report.pdf"
    result = _cli(server.data_dir, "audit", "report", "--from", "2026-11-16", "--to",
                  "2026-11-23", "--out", str(out))
    assert result.returncode == 0, result.stderr
    assert out.read_bytes().startswith(b"%PDF-")
    if shutil.which("pdftoppm") is None:
        pytest.skip("pdftoppm (poppler-utils) not installed")
    subprocess.run(["pdftoppm", "-png", "-r", "80", "-f", "1", "-l", "1", str(out),
                    str(tmp_path / "page")], check=True, timeout=60)
    png = next(tmp_path.glob("page*.png"))
    keep = os.environ.get("SC_AUDIT_REPORT_PNG")
    if keep:  # to look at it
        shutil.copy(png, keep)
        shutil.copy(out, keep + ".pdf")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 5000

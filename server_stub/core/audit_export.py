"""Audit exports: CSV, JSON lines, and an HL7 FHIR R5 ``Bundle`` of ``AuditEvent``.

Every format carries each entry's ``seq``, ``prev_hash`` and ``entry_hash``, so an export
can be re-checked on its own (a JSONL export re-hashes with ``crud.audit.entry_hash``).
Exports are generators of text chunks: 100,000 entries never sit in memory as one string.

FHIR mapping (one AuditEvent per entry): ``code`` = our action (system
``urn:safeconsult:audit-action``); ``category`` = the DICOM audit event type (DCM 110114
user authentication, 110110 patient record, 110106 export, 110113 security alert, 110136
security roles changed, 110100 application activity); ``action`` C/R/U/D/E; ``recorded``;
``outcome.code`` 0 success, 4 refused, 8 failed; ``agent`` the user (requestor) and the
device, with the source address as ``networkString``; ``source.observer`` this server;
``entity`` the object, with seq and hashes as entity details.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
from collections.abc import Iterable, Iterator
from typing import Any

FORMATS = ("csv", "jsonl", "fhir")
CSV_FIELDS = ("seq", "time_utc", "ts_ms", "actor_user_id", "actor_username", "device_id",
              "action", "object_type", "object_id", "outcome", "source", "detail",
              "prev_hash", "entry_hash")
DCM = "http://dicom.nema.org/resources/ontology/DCM"
_OUTCOME = {"ok": "0", "refused": "4", "failed": "8"}


def iso_utc(ts_ms: int) -> str:
    moment = dt.datetime.fromtimestamp(ts_ms / 1000, dt.UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{ts_ms % 1000:03d}Z"


def _detail_text(detail: Any) -> str:
    if detail is None:
        return ""
    return json.dumps(detail, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def export_csv(entries: Iterable[dict[str, Any]], names: dict[str, str]) -> Iterator[str]:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\r\n")
    writer.writerow(CSV_FIELDS)
    for e in entries:
        writer.writerow([
            e["seq"], iso_utc(e["ts_ms"]), e["ts_ms"], e["actor_user_id"] or "",
            names.get(e["actor_user_id"] or "", ""), e["device_id"] or "", e["action"],
            e["object_type"] or "", e["object_id"] or "", e["outcome"], e["source"],
            _detail_text(e["detail"]), e["prev_hash"], e["entry_hash"]])
        yield buf.getvalue()
        buf.seek(0)
        buf.truncate()


def export_jsonl(entries: Iterable[dict[str, Any]]) -> Iterator[str]:
    """One JSON object per line; ``detail`` as the stored canonical text (so
    ``crud.audit.entry_hash`` of a line equals its ``entry_hash``)."""
    for e in entries:
        row = {**e, "detail": None if e["detail"] is None else _detail_text(e["detail"])}
        yield json.dumps(row, separators=(",", ":"), ensure_ascii=False) + "\n"


def _category(action: str) -> tuple[str, str]:
    if action.startswith(("login", "logout", "session.")):
        return "110114", "User Authentication"
    if "break_glass" in action or action.endswith("lockout"):
        return "110113", "Security Alert"
    if action.endswith((".export", ".print", ".download")) or action == "audit.export":
        return "110106", "Export"
    if action.startswith(("user.", "room.grant", "room.revoke", "policy.", "client.policy.")):
        return "110136", "Security Roles Changed"
    if action.startswith(("client.image.", "client.patient.", "client.file.", "client.record.",
                          "room.", "event")):
        return "110110", "Patient Record"
    return "110100", "Application Activity"


def _crude(action: str) -> str:
    if action.endswith((".create", ".enroll", ".grant", "record.start", ".publish")):
        return "C"
    if action.endswith((".disable", ".enable", ".reset", ".approve", "password_reset",
                        "totp_reset", ".review", ".change")):
        return "U"
    if action.endswith((".revoke", ".wipe", ".purge", "wipe.local", ".remove")):
        return "D"
    if action.endswith((".open", ".download", ".export", ".print", ".verify")):
        return "R"
    return "E"


def _ident(kind: str, value: str) -> dict[str, Any]:
    return {"identifier": {"system": f"urn:safeconsult:{kind}", "value": value}}


def fhir_audit_event(e: dict[str, Any], names: dict[str, str]) -> dict[str, Any]:
    code, display = _category(e["action"])
    agents: list[dict[str, Any]] = []
    if e["actor_user_id"]:
        who = _ident("user", e["actor_user_id"])
        if e["actor_user_id"] in names:
            who["display"] = names[e["actor_user_id"]]
        agents.append({"type": {"text": "user"}, "who": who, "requestor": True,
                       "networkString": e["source"]})
    else:
        agents.append({"type": {"text": "operator"}, "who": {"display": e["source"]},
                       "requestor": True})
    if e["device_id"]:
        agents.append({"type": {"text": "device"}, "who": _ident("device", e["device_id"]),
                       "requestor": False, "networkString": e["source"]})
    details = [{"type": {"text": "seq"}, "valueInteger": e["seq"]},
               {"type": {"text": "prev_hash"}, "valueString": e["prev_hash"]},
               {"type": {"text": "entry_hash"}, "valueString": e["entry_hash"]}]
    if e["detail"] is not None:
        details.append({"type": {"text": "detail"}, "valueString": _detail_text(e["detail"])})
    entity: dict[str, Any] = {"detail": details}
    if e["object_id"]:
        entity["what"] = _ident(e["object_type"] or "object", e["object_id"])
    return {
        "resourceType": "AuditEvent",
        "id": f"sc-audit-{e['seq']}",
        "category": [{"coding": [{"system": DCM, "code": code, "display": display}]}],
        "code": {"coding": [{"system": "urn:safeconsult:audit-action", "code": e["action"]}],
                 "text": e["action"]},
        "action": _crude(e["action"]),
        "recorded": iso_utc(e["ts_ms"]),
        "outcome": {"code": {
            "system": "http://terminology.hl7.org/CodeSystem/audit-event-outcome",
            "code": _OUTCOME.get(e["outcome"], "8")}},
        "agent": agents,
        "source": {"observer": {"display": "SafeConsult reference server"}},
        "entity": [entity],
    }


def export_fhir(entries: Iterable[dict[str, Any]], names: dict[str, str]) -> Iterator[str]:
    """A FHIR R5 Bundle (type collection), streamed."""
    yield ('{"resourceType":"Bundle","type":"collection","timestamp":'
           f'{json.dumps(iso_utc(int(dt.datetime.now(dt.UTC).timestamp() * 1000)))},"entry":[')
    first = True
    for e in entries:
        resource = fhir_audit_event(e, names)
        item = {"fullUrl": f"urn:safeconsult:audit:{e['seq']}", "resource": resource}
        yield ("" if first else ",") + json.dumps(item, separators=(",", ":"),
                                                  ensure_ascii=False)
        first = False
    yield "]}\n"


def export(fmt: str, entries: Iterable[dict[str, Any]], names: dict[str, str]) -> Iterator[str]:
    if fmt == "csv":
        return export_csv(entries, names)
    if fmt == "jsonl":
        return export_jsonl(entries)
    if fmt == "fhir":
        return export_fhir(entries, names)
    raise ValueError(f"format must be one of {', '.join(FORMATS)}")


MEDIA_TYPES = {"csv": "text/csv", "jsonl": "application/x-ndjson",
               "fhir": "application/fhir+json"}

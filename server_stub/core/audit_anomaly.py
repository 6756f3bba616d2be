"""Anomaly rules over the audit log (access review). Each rule and its thresholds:

``bulk_access``     one user makes >= 20 downloads, exports or prints (client entries
                    ``file.download``, ``file.export``, ``file.print``, ``image.export``) or
                    server ``audit.export`` within 10 minutes. One alert per burst.
``out_of_hours``    a login or data access (client ``file.*``, ``image.*``, ``patient.*``,
                    ``record.start``,
                    ``break_glass``; server ``login`` ok, ``room.break_glass``) outside
                    07:00-19:00 in the review's time zone (default UTC) or on a Saturday or
                    Sunday. One alert per user and calendar day, with the count.
``break_glass``     every break-glass access (server ``room.break_glass`` ok or client
                    ``break_glass``). One alert each; the review queue is separate
                    (GET /v1/break_glass, ``admin audit review``).
``failed_logins``   >= 5 failed logins within 5 minutes for one user or from one source
                    address (password spraying). One alert per burst (a burst that is
                    both one user's and one source's is reported once).
``new_network``     a device is seen from a network (IPv4 /24, IPv6 /64) it was never seen
                    from before; the device's first network is its baseline, not an alert.

``Thresholds`` holds these numbers; ``find_alerts`` takes another to tune them.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import json
import sqlite3
from collections import defaultdict, deque
from dataclasses import asdict, dataclass, field

BULK_ACTIONS = frozenset({"client.file.download", "client.file.export", "client.file.print",
                          "client.image.export", "audit.export"})
ACCESS_PREFIXES = ("client.file.", "client.image.", "client.patient.", "client.record.start",
                   "client.break_glass", "room.break_glass")
BREAK_GLASS_ACTIONS = frozenset({"room.break_glass", "client.break_glass"})


@dataclass(frozen=True)
class Thresholds:
    bulk_count: int = 20
    bulk_window_s: int = 600
    work_start_hour: int = 7
    work_end_hour: int = 19
    weekend_is_out_of_hours: bool = True
    utc_offset_minutes: int = 0
    failed_count: int = 5
    failed_window_s: int = 300
    ipv4_prefix: int = 24
    ipv6_prefix: int = 64


@dataclass
class Alert:
    rule: str
    ts_ms: int
    user_id: str | None
    device_id: str | None
    count: int
    first_seq: int
    last_seq: int
    message: str
    seqs: list[int] = field(default_factory=list, repr=False)

    def to_dict(self) -> dict:
        d = asdict(self)
        d.pop("seqs")
        return d


def _network(source: str, th: Thresholds) -> str | None:
    try:
        ip = ipaddress.ip_address(source)
    except ValueError:
        return None  # "admin-cli", "server", "unknown"
    prefix = th.ipv4_prefix if ip.version == 4 else th.ipv6_prefix
    return str(ipaddress.ip_network(f"{ip}/{prefix}", strict=False))


class _Burst:
    """Sliding-window counter that fires once per burst per key."""

    def __init__(self, count: int, window_ms: int) -> None:
        self.count, self.window_ms = count, window_ms
        self.recent: dict[str, deque[tuple[int, int]]] = defaultdict(deque)
        self.quiet_until: dict[str, int] = {}

    def add(self, key: str, ts: int, seq: int) -> list[tuple[int, int]] | None:
        q = self.recent[key]
        q.append((ts, seq))
        while q and q[0][0] <= ts - self.window_ms:
            q.popleft()
        if len(q) >= self.count and ts >= self.quiet_until.get(key, 0):
            self.quiet_until[key] = q[0][0] + self.window_ms
            return list(q)
        return None


def find_alerts(conn: sqlite3.Connection, *, from_ms: int | None = None,
                to_ms: int | None = None, th: Thresholds | None = None) -> list[Alert]:
    """Alerts for entries with ``from_ms <= ts_ms < to_ms`` (earlier entries only serve as
    the baseline of known networks), ordered by time."""
    th = th or Thresholds()
    lo = from_ms if from_ms is not None else -(2**62)
    hi = to_ms if to_ms is not None else 2**62
    tz = dt.timezone(dt.timedelta(minutes=th.utc_offset_minutes))
    alerts: list[Alert] = []
    bulk = _Burst(th.bulk_count, th.bulk_window_s * 1000)
    failed = _Burst(th.failed_count, th.failed_window_s * 1000)
    ooh: dict[tuple[str, str], Alert] = {}
    networks: dict[str, set[str]] = defaultdict(set)
    rows = conn.execute(
        "SELECT seq, ts_ms, actor_user_id, device_id, action, outcome, source, object_id,"
        " detail FROM audit_log WHERE ts_ms < ? ORDER BY seq", (hi,))
    for seq, ts, user, device, action, outcome, source, object_id, detail in rows:
        in_window = ts >= lo
        net = _network(source, th) if device else None
        if net is not None:
            known = networks[device]
            if known and net not in known and in_window:
                alerts.append(Alert("new_network", ts, user, device, 1, seq, seq,
                                    f"device seen from new network {net}", [seq]))
            known.add(net)
        if not in_window:
            continue
        if action in BULK_ACTIONS and outcome == "ok" and user:
            hit = bulk.add(user, ts, seq)
            if hit:
                alerts.append(Alert(
                    "bulk_access", hit[0][0], user, device, len(hit), hit[0][1], hit[-1][1],
                    f"{len(hit)} downloads/exports in {th.bulk_window_s // 60} min",
                    [s for _, s in hit]))
        if action == "login" and outcome == "failed":
            who = json.loads(detail).get("known_user") if detail else None
            for key in ([f"user:{user}"] if user else []) + [f"source:{source}"]:
                hit = failed.add(key, ts, seq)
                if hit and any(a.rule == "failed_logins" and a.seqs == [s for _, s in hit]
                               for a in alerts[-2:]):
                    continue  # the same burst by user and by source: one alert
                if hit:
                    alerts.append(Alert(
                        "failed_logins", hit[0][0], user if key.startswith("user:") else None,
                        None, len(hit), hit[0][1], hit[-1][1],
                        f"{len(hit)} failed logins in {th.failed_window_s // 60} min"
                        + (" for this user" if key.startswith("user:") else
                           f" from {source}" + ("" if who is None or user
                                                else ", unknown names")),
                        [s for _, s in hit]))
        if action in BREAK_GLASS_ACTIONS and outcome == "ok":
            alerts.append(Alert("break_glass", ts, user, device, 1, seq, seq,
                                f"break-glass access to {object_id}", [seq]))
        if user and outcome == "ok" and (
                action == "login" or action.startswith(ACCESS_PREFIXES)):
            local = dt.datetime.fromtimestamp(ts / 1000, tz)
            weekend = th.weekend_is_out_of_hours and local.weekday() >= 5
            if weekend or not th.work_start_hour <= local.hour < th.work_end_hour:
                key = (user, local.date().isoformat())
                alert = ooh.get(key)
                if alert is None:
                    alert = ooh[key] = Alert(
                        "out_of_hours", ts, user, device, 0, seq, seq,
                        f"{'weekend' if weekend else 'night'} access on {key[1]}")
                    alerts.append(alert)
                alert.count += 1
                alert.last_seq = seq
                alert.seqs.append(seq)
    return sorted(alerts, key=lambda a: (a.ts_ms, a.first_seq))

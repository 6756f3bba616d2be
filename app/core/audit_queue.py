"""Audit entries waiting on this device to be sent to the server."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class QueuedAudit:
    """One queued audit entry. ``payload`` is the serialised entry (ids and codes, no PHI)."""

    seq: int  # local, increasing: the order they happened in
    kind: str  # e.g. "login", "wipe", "export"
    payload: bytes
    created_ms: int

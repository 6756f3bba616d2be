"""Server settings: one frozen object built from the command line (or tests)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class ServerSettings:
    data_dir: Path
    host: str = "127.0.0.1"
    port: int = 8443
    # Policy the server enforces for every client.
    require_device_approval: bool = True
    access_token_ttl_s: int = 15 * 60
    refresh_token_ttl_s: int = 12 * 3600
    session_absolute_s: int = 12 * 3600  # a shift; then password + TOTP again
    proof_window_s: int = 60  # request proof clock skew / replay window
    max_body_bytes: int = 1_048_576  # JSON bodies
    max_chunk_bytes: int = 8 * 1_048_576  # blob chunks
    max_blob_bytes: int = 2 * 1_073_741_824
    retention_days: int = 30  # events and blobs
    audit_retention_days: int = 6 * 366
    audit_checkpoint_interval_s: float = 3600.0  # sign the audit head this often if it grew
    turn_secret: str = ""  # shared secret with coturn (use-auth-secret); empty: no TURN
    turn_urls: tuple[str, ...] = ()
    turn_ttl_s: int = 3600
    # Login throttling (auth): lockout well inside NIST 800-63B's 100-failure cap.
    login_max_failures: int = 10  # consecutive, per username; then locked
    login_lockout_s: int = 15 * 60
    login_backoff_base_ms: int = 500  # doubles per failure after the first, capped at 30 s
    login_ip_max_failures: int = 50  # per source address per window
    login_ip_window_s: int = 10 * 60
    # Relay (rooms, events, signaling, blobs).
    max_event_bytes: int = 65_536  # one room event's or to-device message's content, as JSON
    break_glass_ttl_s: int = 4 * 3600  # a break-glass grant lapses after this
    signal_ttl_s: int = 30  # a call-signaling message waits this long for an offline device
    relay_sweep_interval_s: float = 300.0  # retention purge + lapsed-grant sweep
    relay_watch_interval_s: float = 0.5  # push device-list changes and wipe/logout orders (<= 1 s)
    wal_checkpoint_interval_s: float = 1.0  # background WAL checkpoint (none inside commits)
    relay_ack_sync_interval_s: float = 0.05  # at most one fsync per this for `sent` replies

    @property
    def db_path(self) -> Path:
        return self.data_dir / "server.sqlite3"

    @property
    def blob_dir(self) -> Path:
        return self.data_dir / "blobs"

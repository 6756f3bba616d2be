"""Schema for users, devices, sessions, keys, audit (owned by the auth/devices work).

Identifiers: ``users.id`` and ``devices.device_id`` are opaque text (16 random bytes,
unpadded URL-safe base64), so other tables reference them as TEXT. Tokens are never stored
in clear: only their SHA-256 (hex), so a copy of the database does not yield a session.
Times are integer milliseconds since the Unix epoch.
"""

SQL = """
CREATE TABLE users (
    id               TEXT PRIMARY KEY,
    username         TEXT NOT NULL UNIQUE,
    role             TEXT NOT NULL
                     CHECK (role IN ('physician','nurse','consultant','it_admin','auditor')),
    password_hash    TEXT NOT NULL,               -- argon2id PHC string
    totp_sealed      TEXT NOT NULL,               -- base32 seed, AES-GCM sealed (SecretBox)
    totp_last_step   INTEGER NOT NULL DEFAULT 0,  -- highest RFC 6238 step accepted so far
    disabled         INTEGER NOT NULL DEFAULT 0 CHECK (disabled IN (0, 1)),
    device_list_version INTEGER NOT NULL DEFAULT 0,  -- bumped on any change to the directory
    created_ms       INTEGER NOT NULL
);

-- Failed-login bookkeeping is keyed by the *submitted* username, known or not, so that
-- backoff and lockout behave the same for unknown users (no account enumeration).
CREATE TABLE login_throttle (
    username         TEXT PRIMARY KEY,
    failures         INTEGER NOT NULL DEFAULT 0,   -- consecutive
    next_attempt_ms  INTEGER NOT NULL DEFAULT 0,   -- exponential backoff
    locked_until_ms  INTEGER NOT NULL DEFAULT 0,
    updated_ms       INTEGER NOT NULL
);

CREATE TABLE devices (
    device_id        TEXT PRIMARY KEY,
    user_id          TEXT NOT NULL REFERENCES users(id),
    ed25519          TEXT NOT NULL UNIQUE,
    curve25519       TEXT NOT NULL,
    display_name     TEXT NOT NULL,
    enroll_ts_ms     INTEGER NOT NULL,
    enroll_signature TEXT NOT NULL,   -- the device's self-signature (docs/protocol.md)
    state            TEXT NOT NULL
                     CHECK (state IN ('pending','active','revoked','wiped')),
    pending_order    TEXT NOT NULL DEFAULT 'none'
                     CHECK (pending_order IN ('none','logout','wipe')),
    order_id         TEXT,
    created_ms       INTEGER NOT NULL,
    approved_ms      INTEGER,
    last_seen_ms     INTEGER
);
CREATE INDEX devices_user ON devices(user_id);

-- One row per login (a refresh-token family). The current access and refresh tokens are
-- stored hashed; refresh tokens already rotated away are kept in spent_refresh_tokens so
-- that presenting one again revokes the whole session.
CREATE TABLE sessions (
    id                  TEXT PRIMARY KEY,
    user_id             TEXT NOT NULL REFERENCES users(id),
    device_id           TEXT NOT NULL REFERENCES devices(device_id),
    access_hash         TEXT NOT NULL UNIQUE,
    access_expires_ms   INTEGER NOT NULL,
    refresh_hash        TEXT NOT NULL UNIQUE,
    refresh_expires_ms  INTEGER NOT NULL,
    absolute_expires_ms INTEGER NOT NULL,
    created_ms          INTEGER NOT NULL,
    revoked_ms          INTEGER,
    revoke_reason       TEXT
);
CREATE INDEX sessions_device ON sessions(device_id);
CREATE INDEX sessions_user ON sessions(user_id);

CREATE TABLE spent_refresh_tokens (
    token_hash  TEXT PRIMARY KEY,
    session_id  TEXT NOT NULL REFERENCES sessions(id),
    spent_ms    INTEGER NOT NULL
);

CREATE TABLE proof_nonces (
    device_id  TEXT NOT NULL,
    nonce      TEXT NOT NULL,
    seen_ms    INTEGER NOT NULL,
    PRIMARY KEY (device_id, nonce)
) WITHOUT ROWID;
CREATE INDEX proof_nonces_seen ON proof_nonces(seen_ms);

CREATE TABLE one_time_keys (
    device_id  TEXT NOT NULL REFERENCES devices(device_id),
    key_id     TEXT NOT NULL,
    key        TEXT NOT NULL,       -- Curve25519, unpadded base64
    signature  TEXT NOT NULL,       -- device Ed25519 over SC-OTK-v1 (docs/protocol.md)
    created_ms INTEGER NOT NULL,
    PRIMARY KEY (device_id, key_id)
);

CREATE TABLE fallback_keys (
    device_id  TEXT PRIMARY KEY REFERENCES devices(device_id),
    key_id     TEXT NOT NULL,
    key        TEXT NOT NULL,
    signature  TEXT NOT NULL,
    created_ms INTEGER NOT NULL
);

-- Append-only, hash-chained. seq is assigned by append_audit (last + 1) inside the
-- writer's transaction and is part of the hashed row, so deleting or reordering rows
-- breaks the chain. server_meta('audit_head') holds "<seq>:<entry_hash>" of the last row.
CREATE TABLE audit_log (
    seq            INTEGER PRIMARY KEY,
    ts_ms          INTEGER NOT NULL,
    actor_user_id  TEXT,
    device_id      TEXT,
    action         TEXT NOT NULL,
    object_type    TEXT,
    object_id      TEXT,
    outcome        TEXT NOT NULL,
    source         TEXT NOT NULL,
    detail         TEXT,            -- canonical JSON or NULL; never PHI
    prev_hash      TEXT NOT NULL,
    entry_hash     TEXT NOT NULL
);
CREATE INDEX audit_action ON audit_log(action);
-- Client entries are uploaded at least once; a re-sent one is found by its device_seq.
CREATE INDEX audit_client_entry ON audit_log(device_id, json_extract(detail, '$.device_seq'))
    WHERE detail IS NOT NULL;

CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log
BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END;
CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log
BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END;

-- Signed checkpoints (server_stub/core/audit_checkpoint.py): "<seq>:<entry_hash>" of the
-- audit head at a moment, signed with the server's audit key (DATA/audit/, 0600). A purge
-- deletes the oldest entries only up to a checkpoint marked purge_cut, and verification
-- then starts from that checkpoint instead of the genesis hash.
CREATE TABLE audit_checkpoints (
    id          INTEGER PRIMARY KEY,
    seq         INTEGER NOT NULL,    -- last entry covered
    entry_hash  TEXT NOT NULL,       -- that entry's hash
    entry_ts_ms INTEGER NOT NULL,    -- that entry's time
    created_ms  INTEGER NOT NULL,
    public_key  TEXT NOT NULL,       -- server audit key, Ed25519, unpadded base64
    signature   TEXT NOT NULL,       -- over SC-AUDIT-CHECKPOINT-v1 (docs/protocol.md)
    purge_cut   INTEGER NOT NULL DEFAULT 0 CHECK (purge_cut IN (0, 1))
);
CREATE TRIGGER audit_checkpoints_no_update BEFORE UPDATE ON audit_checkpoints
BEGIN SELECT RAISE(ABORT, 'audit_checkpoints is append-only'); END;
CREATE TRIGGER audit_checkpoints_no_delete BEFORE DELETE ON audit_checkpoints
BEGIN SELECT RAISE(ABORT, 'audit_checkpoints is append-only'); END;

-- Deleting audit rows is refused except at or below the latest purge cut (retention).
DROP TRIGGER audit_log_no_delete;
CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log
WHEN OLD.seq > (SELECT COALESCE(MAX(seq), 0) FROM audit_checkpoints WHERE purge_cut = 1)
BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END;

-- Two-person rule (server_stub/core/audit_policy.py): an audit export or a policy change
-- waits here for a second person's approval when the policy in server_meta says so.
CREATE TABLE audit_requests (
    id            INTEGER PRIMARY KEY,
    kind          TEXT NOT NULL CHECK (kind IN ('audit.export', 'policy.change')),
    params        TEXT NOT NULL,     -- canonical JSON
    requested_by  TEXT NOT NULL,     -- users.id
    requested_ms  INTEGER NOT NULL,
    state         TEXT NOT NULL DEFAULT 'pending'
                  CHECK (state IN ('pending', 'approved', 'denied', 'used')),
    decided_by    TEXT,
    decided_ms    INTEGER
);
CREATE INDEX audit_by_time ON audit_log(ts_ms);
"""

"""Schema for rooms, grants, events, to-device messages, blobs (owned by the relay work).

User and device ids are the auth layer's opaque TEXT ids (schema_auth).
Everything that is content is ciphertext the server cannot read: event and to-device
``content`` (JSON text as the client sent it), ``linked_patient_ct`` and blob chunk files.
"""

SQL = """
CREATE TABLE rooms (
    room_id            TEXT PRIMARY KEY,
    creator_user_id    TEXT NOT NULL,
    created_ms         INTEGER NOT NULL,
    -- bumped at every membership change; clients rotate their Megolm session when it moves
    membership_version INTEGER NOT NULL DEFAULT 0,
    linked_patient_ct  TEXT
);

-- One row per user who is invited to, joined or left a room. A joined row whose expires_ms
-- has passed is a lapsed grant: every access check treats it as absent, and the sweep turns
-- it into 'left' with an 'expire' membership event.
CREATE TABLE room_members (
    room_id     TEXT NOT NULL REFERENCES rooms(room_id) ON DELETE CASCADE,
    user_id     TEXT NOT NULL,
    role        TEXT NOT NULL CHECK (role IN ('owner', 'member', 'observer')),
    state       TEXT NOT NULL CHECK (state IN ('invited', 'joined', 'left')),
    since_ms    INTEGER NOT NULL,
    expires_ms  INTEGER,
    -- the stream positions this member may read: from their join event up to (for a 'left'
    -- row) the event that ended the membership, so an offline client still learns it left
    visible_from_pos  INTEGER NOT NULL DEFAULT 0,
    visible_until_pos INTEGER,
    -- for a lapsed grant: the last event posted before the expiry. Events posted between
    -- the expiry and the moment the lapse was recorded stay hidden from the lapsed member.
    content_until_pos INTEGER,
    granted_by TEXT,
    break_glass_id INTEGER,
    PRIMARY KEY (room_id, user_id)
);
CREATE INDEX room_members_user ON room_members(user_id);
CREATE INDEX room_members_expiry ON room_members(expires_ms) WHERE expires_ms IS NOT NULL;

-- Break-glass entries are kept (not deleted with the membership) until an auditor reviews them.
CREATE TABLE break_glass (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    room_id       TEXT NOT NULL,
    user_id       TEXT NOT NULL,
    device_id     TEXT,
    reason        TEXT NOT NULL,
    created_ms    INTEGER NOT NULL,
    expires_ms    INTEGER NOT NULL,
    reviewed_ms   INTEGER,
    reviewed_by TEXT,
    review_note   TEXT
);
CREATE INDEX break_glass_unreviewed ON break_glass(reviewed_ms, id);

-- The room timeline. pos is the global stream position: writers are serialised by
-- BEGIN IMMEDIATE, so positions become visible in increasing order and a sync token that
-- names a position never skips an event committed later.
CREATE TABLE events (
    pos              INTEGER PRIMARY KEY AUTOINCREMENT,
    room_id          TEXT NOT NULL REFERENCES rooms(room_id) ON DELETE CASCADE,
    event_id         TEXT NOT NULL,
    type             TEXT NOT NULL,
    sender_user_id TEXT,
    sender_device_id TEXT,
    content          TEXT NOT NULL,
    content_sha256   TEXT NOT NULL,
    origin_ms        INTEGER NOT NULL,
    UNIQUE (room_id, event_id)
);
CREATE INDEX events_room_pos ON events(room_id, pos);
CREATE INDEX events_origin ON events(origin_ms);

CREATE TABLE to_device (
    msg_id              INTEGER PRIMARY KEY AUTOINCREMENT,
    recipient_user_id   TEXT NOT NULL,
    recipient_device_id TEXT NOT NULL,
    sender_user_id      TEXT NOT NULL,
    sender_device_id    TEXT NOT NULL,
    type                TEXT NOT NULL,
    content             TEXT NOT NULL,
    created_ms          INTEGER NOT NULL
);
CREATE INDEX to_device_recipient ON to_device(recipient_device_id, msg_id);
CREATE INDEX to_device_created ON to_device(created_ms);

-- Remembers a sender device's transaction ids so a retried send is stored once.
CREATE TABLE to_device_txns (
    sender_device_id TEXT NOT NULL,
    txn_id           TEXT NOT NULL,
    request_sha256   TEXT NOT NULL,
    created_ms       INTEGER NOT NULL,
    PRIMARY KEY (sender_device_id, txn_id)
);
CREATE INDEX to_device_txns_created ON to_device_txns(created_ms);

CREATE TABLE blobs (
    blob_id          TEXT PRIMARY KEY,
    room_id          TEXT NOT NULL REFERENCES rooms(room_id) ON DELETE CASCADE,
    owner_user_id    TEXT NOT NULL,
    owner_device_id  TEXT,
    total_size       INTEGER NOT NULL,
    chunk_size       INTEGER NOT NULL,
    chunk_count      INTEGER NOT NULL,
    sha256           TEXT NOT NULL,
    state            TEXT NOT NULL CHECK (state IN ('uploading', 'finalizing', 'complete')),
    created_ms       INTEGER NOT NULL,
    completed_ms     INTEGER
);
CREATE INDEX blobs_room ON blobs(room_id);
CREATE INDEX blobs_created ON blobs(created_ms);

CREATE TABLE blob_chunks (
    blob_id  TEXT NOT NULL REFERENCES blobs(blob_id) ON DELETE CASCADE,
    idx      INTEGER NOT NULL,
    size     INTEGER NOT NULL,
    PRIMARY KEY (blob_id, idx)
);
"""

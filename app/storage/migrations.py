"""Numbered schema migrations of the encrypted cache, tracked by ``PRAGMA user_version``.

Append only: a released migration is never edited, so every device reaches the same schema.
Each migration is a tuple of single statements, run in one transaction with the version bump.
"""

from __future__ import annotations

MIGRATIONS: tuple[tuple[int, tuple[str, ...]], ...] = (
    (
        1,
        (
            """CREATE TABLE meta (
                id INTEGER PRIMARY KEY CHECK (id = 1),
                generation INTEGER NOT NULL,
                clean_shutdown INTEGER NOT NULL,
                created_ms INTEGER NOT NULL
            )""",
            """CREATE TABLE messages (
                id INTEGER PRIMARY KEY,
                room_id TEXT NOT NULL,
                event_id TEXT NOT NULL UNIQUE,
                sender TEXT NOT NULL,
                ts_ms INTEGER NOT NULL,
                body TEXT NOT NULL
            )""",
            "CREATE INDEX messages_room_ts ON messages (room_id, ts_ms)",
            # External-content FTS5 index; trigram so that CJK text (no spaces) is searchable.
            """CREATE VIRTUAL TABLE messages_fts USING fts5 (
                body, content = 'messages', content_rowid = 'id', tokenize = 'trigram'
            )""",
            """CREATE TRIGGER messages_ai AFTER INSERT ON messages BEGIN
                INSERT INTO messages_fts (rowid, body) VALUES (new.id, new.body);
            END""",
            """CREATE TRIGGER messages_ad AFTER DELETE ON messages BEGIN
                INSERT INTO messages_fts (messages_fts, rowid, body)
                    VALUES ('delete', old.id, old.body);
            END""",
            """CREATE TRIGGER messages_au AFTER UPDATE OF body ON messages BEGIN
                INSERT INTO messages_fts (messages_fts, rowid, body)
                    VALUES ('delete', old.id, old.body);
                INSERT INTO messages_fts (rowid, body) VALUES (new.id, new.body);
            END""",
            """CREATE TABLE secrets (
                name TEXT PRIMARY KEY,
                value BLOB NOT NULL
            ) WITHOUT ROWID""",
            """CREATE TABLE audit_queue (
                seq INTEGER PRIMARY KEY AUTOINCREMENT,
                kind TEXT NOT NULL,
                payload BLOB NOT NULL,
                created_ms INTEGER NOT NULL
            )""",
        ),
    ),
    (
        2,
        (
            # Secure chat (app/storage/crypto_store.py, app/storage/outbox.py,
            # app/services/chat.py). vodozemac pickles are already encrypted under the
            # pickle key; everything else is protected by the cache's own encryption.
            """CREATE TABLE crypto_account (
                id INTEGER PRIMARY KEY CHECK (id = 1),
                pickle TEXT NOT NULL
            )""",
            """CREATE TABLE crypto_olm_sessions (
                peer_curve25519 TEXT NOT NULL,
                session_id TEXT NOT NULL,
                pickle TEXT NOT NULL,
                created_ms INTEGER NOT NULL,
                last_used_ms INTEGER NOT NULL,
                PRIMARY KEY (peer_curve25519, session_id)
            ) WITHOUT ROWID""",
            """CREATE TABLE crypto_outbound_groups (
                room_id TEXT PRIMARY KEY,
                session_id TEXT NOT NULL,
                pickle TEXT NOT NULL,
                created_ms INTEGER NOT NULL,
                message_count INTEGER NOT NULL,
                recipients TEXT NOT NULL,
                shared_with TEXT NOT NULL
            ) WITHOUT ROWID""",
            """CREATE TABLE crypto_inbound_groups (
                room_id TEXT NOT NULL,
                sender_key TEXT NOT NULL,
                session_id TEXT NOT NULL,
                pickle TEXT NOT NULL,
                first_known_index INTEGER NOT NULL,
                sender_user TEXT NOT NULL,
                sender_device TEXT NOT NULL,
                sender_ed25519 TEXT NOT NULL,
                forwarded INTEGER NOT NULL,
                PRIMARY KEY (room_id, sender_key, session_id)
            ) WITHOUT ROWID""",
            "CREATE INDEX crypto_inbound_by_session ON crypto_inbound_groups"
            " (sender_key, session_id)",
            """CREATE TABLE crypto_seen (
                session_id TEXT NOT NULL,
                message_index INTEGER NOT NULL,
                event_id TEXT NOT NULL,
                PRIMARY KEY (session_id, message_index)
            ) WITHOUT ROWID""",
            """CREATE TABLE crypto_devices (
                user_id TEXT NOT NULL,
                device_id TEXT NOT NULL,
                username TEXT NOT NULL,
                ed25519 TEXT NOT NULL,
                curve25519 TEXT NOT NULL,
                enroll_ts_ms INTEGER NOT NULL,
                signature TEXT NOT NULL,
                trust TEXT NOT NULL,
                PRIMARY KEY (user_id, device_id)
            ) WITHOUT ROWID""",
            "CREATE INDEX crypto_devices_by_curve ON crypto_devices (curve25519)",
            # Users whose device list was fed in (possibly with no device left): "seen".
            """CREATE TABLE crypto_users (
                user_id TEXT PRIMARY KEY,
                device_list_version INTEGER NOT NULL DEFAULT -1
            ) WITHOUT ROWID""",
            """CREATE TABLE chat_state (
                name TEXT PRIMARY KEY,
                value TEXT NOT NULL
            ) WITHOUT ROWID""",
            """CREATE TABLE chat_rooms (
                room_id TEXT PRIMARY KEY,
                state TEXT NOT NULL,
                unread INTEGER NOT NULL DEFAULT 0,
                last_ts_ms INTEGER NOT NULL DEFAULT 0
            ) WITHOUT ROWID""",
            """CREATE TABLE chat_members (
                room_id TEXT NOT NULL,
                user_id TEXT NOT NULL,
                state TEXT NOT NULL,
                PRIMARY KEY (room_id, user_id)
            ) WITHOUT ROWID""",
            # Room events not shown (yet): waiting for their key, or rejected. Never dropped.
            """CREATE TABLE chat_undecrypted (
                event_id TEXT PRIMARY KEY,
                room_id TEXT NOT NULL,
                sender TEXT NOT NULL,
                sender_device TEXT,
                origin_ms INTEGER NOT NULL,
                content TEXT NOT NULL,
                state TEXT NOT NULL,
                reason TEXT NOT NULL,
                session_id TEXT,
                requested_ms INTEGER
            ) WITHOUT ROWID""",
            "CREATE INDEX chat_undecrypted_session ON chat_undecrypted (session_id, state)",
            # Offline outbox: plaintext until the event is encrypted, then the exact
            # ciphertext that is (re)posted under the client-chosen event id.
            """CREATE TABLE chat_outbox (
                seq INTEGER PRIMARY KEY AUTOINCREMENT,
                room_id TEXT NOT NULL,
                event_id TEXT NOT NULL UNIQUE,
                body TEXT,
                content TEXT,
                created_ms INTEGER NOT NULL,
                attempts INTEGER NOT NULL DEFAULT 0
            )""",
            # To-device batches (room keys, key answers) that must reach the relay before
            # the events they unlock; resent under the same transaction id until accepted.
            """CREATE TABLE chat_outbox_to_device (
                seq INTEGER PRIMARY KEY AUTOINCREMENT,
                txn_id TEXT NOT NULL UNIQUE,
                type TEXT NOT NULL,
                messages TEXT NOT NULL,
                created_ms INTEGER NOT NULL
            )""",
        ),
    ),
    (
        3,
        (
            # Resumable file transfers (app/storage/transfers.py, app/services/transfers/).
            # One row per upload or download: which chunks are done (a bitmap), the per-file
            # key and chunk tags while it runs, the signed descriptor. The file name, type
            # and source path are patient data: they are kept only here, in the cache.
            """CREATE TABLE transfers (
                transfer_id TEXT PRIMARY KEY,
                direction TEXT NOT NULL CHECK (direction IN ('upload', 'download')),
                state TEXT NOT NULL,
                room_id TEXT NOT NULL,
                blob_id TEXT,
                size INTEGER NOT NULL,
                chunk_count INTEGER NOT NULL,
                done BLOB NOT NULL,
                file_key BLOB,
                header BLOB,
                tags BLOB,
                sha256 TEXT,
                source TEXT,
                source_stamp TEXT,
                name TEXT,
                mime TEXT,
                descriptor TEXT,
                sender_ed25519 TEXT,
                file_id TEXT,
                error TEXT,
                created_ms INTEGER NOT NULL,
                updated_ms INTEGER NOT NULL
            ) WITHOUT ROWID""",
            "CREATE INDEX transfers_by_state ON transfers (state)",
        ),
    ),
    (
        4,
        (
            # Replies, edits and recalls (app/services/chat_content.py). Keyed by the target
            # event *and the sender of the change*: an edit or recall by anyone but the
            # message's author lands under another key and is never applied. A change may
            # arrive before its message (waiting for a key): it waits here.
            """CREATE TABLE chat_message_meta (
                event_id TEXT NOT NULL,
                sender TEXT NOT NULL,
                room_id TEXT NOT NULL,
                reply_to TEXT,
                edit_body TEXT,
                edit_order INTEGER,
                recalled_ms INTEGER,
                urgent INTEGER NOT NULL DEFAULT 0,
                PRIMARY KEY (event_id, sender)
            ) WITHOUT ROWID""",
            # Acknowledgements of urgent messages: ours (user_id = us: stop re-notifying)
            # and, for our own urgent messages, the other members'.
            """CREATE TABLE chat_acks (
                event_id TEXT NOT NULL,
                user_id TEXT NOT NULL,
                acked_ms INTEGER NOT NULL,
                PRIMARY KEY (event_id, user_id)
            ) WITHOUT ROWID""",
            # Outbox rows whose body is the JSON of a structured content (edit, recall,
            # reply) rather than the text of a plain message.
            "ALTER TABLE chat_outbox ADD COLUMN structured INTEGER NOT NULL DEFAULT 0",
            # Delivery and read receipts of other members: how far each has the room
            # ("delivered") or has read it ("read"), as the time of the newest message named.
            """CREATE TABLE chat_receipts (
                room_id TEXT NOT NULL,
                user_id TEXT NOT NULL,
                kind TEXT NOT NULL CHECK (kind IN ('delivered', 'read')),
                up_to_ts INTEGER NOT NULL,
                PRIMARY KEY (room_id, user_id, kind)
            ) WITHOUT ROWID""",
        ),
    ),
    (
        5,
        (
            # Studies shared into consult rooms (app/storage/shared_studies.py,
            # app/services/study_share.py), kept so the list survives a restart. The
            # manifest is the signed wire as received: its file descriptors hold the blob ids
            # and the per-file keys, and its descriptions are patient data -- kept only here,
            # in the cache. ``status`` is NULL until opened, then "verified", "unverified"
            # or "refused"; ``file_ids`` (JSON) name the decrypted-on-read files of the
            # encrypted file store.
            """CREATE TABLE shared_studies (
                study_id TEXT PRIMARY KEY,
                room_id TEXT NOT NULL,
                event_id TEXT NOT NULL,
                sender TEXT NOT NULL,
                sender_device TEXT NOT NULL,
                manifest TEXT NOT NULL,
                status TEXT,
                file_ids TEXT,
                received_ms INTEGER NOT NULL
            ) WITHOUT ROWID""",
            "CREATE INDEX shared_studies_by_room ON shared_studies (room_id)",
        ),
    ),
    (
        6,
        (
            # A chat attachment's upload keeps the event id of the file message it is to be
            # sent as (app/services/transfers/chat_files.py), chosen before the upload starts
            # and cleared once the message is in the outbox: an upload that finishes after a
            # restart is announced in its room exactly once (the outbox sends each event id
            # once; the chat refuses to queue an event id twice).
            "ALTER TABLE transfers ADD COLUMN announce_event_id TEXT",
        ),
    ),
    (
        7,
        (
            # A room's next Megolm session, made and its key sent some messages before the
            # current one rotates (app/crypto/machine.py, docs/e2ee.md "Rotation").
            """CREATE TABLE crypto_outbound_upcoming (
                room_id TEXT PRIMARY KEY,
                session_id TEXT NOT NULL,
                pickle TEXT NOT NULL,
                created_ms INTEGER NOT NULL,
                message_count INTEGER NOT NULL,
                recipients TEXT NOT NULL,
                shared_with TEXT NOT NULL
            ) WITHOUT ROWID""",
            # Its key's to-device batch may go after the event it was queued with, unlike a
            # key the next event needs (app/services/chat_sending.py, flush).
            "ALTER TABLE chat_outbox_to_device ADD COLUMN ahead INTEGER NOT NULL DEFAULT 0",
        ),
    ),
    (
        8,
        (
            # What an upload is part of, beyond a chat attachment (NULL): "recording" (the
            # shared recording's id in ``purpose_ref``; its sc.recording event id in
            # ``announce_event_id``) or "study" (one file of a study share; the manifest's
            # event id in ``announce_event_id`` groups the study's files). At sign-in a
            # recording's upload is resumed and announced once; an interrupted study share
            # is cancelled and reported (app/services/transfers/chat_files.py).
            "ALTER TABLE transfers ADD COLUMN purpose TEXT",
            "ALTER TABLE transfers ADD COLUMN purpose_ref TEXT",
        ),
    ),
)

LATEST = MIGRATIONS[-1][0]

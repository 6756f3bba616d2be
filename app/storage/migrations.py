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
)

LATEST = MIGRATIONS[-1][0]

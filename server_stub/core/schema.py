"""Database schema as numbered migrations. Append; never edit one that has shipped.

(Nothing has shipped yet: migrations 2 and 3 are still being written.)
"""

from server_stub.core import schema_auth, schema_relay, schema_review, schema_watch

MIGRATIONS: list[str] = [
    # 1: server identity
    """
    CREATE TABLE server_meta (
        key   TEXT PRIMARY KEY,
        value TEXT NOT NULL
    );
    """,
    # 2: users, devices, sessions, key directory, audit
    schema_auth.SQL,
    # 3: rooms, grants, events, to-device, blobs
    schema_relay.SQL,
    # 4: the relay watch's change counter (bumped by triggers)
    schema_watch.SQL,
    # 5: the break-glass sign-off's decision (approved / flagged), no longer in the note
    schema_review.SQL,
]

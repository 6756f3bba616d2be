"""Database schema as numbered migrations. Append; never edit one that has shipped."""

MIGRATIONS: list[str] = [
    # 1: server identity
    """
    CREATE TABLE server_meta (
        key   TEXT PRIMARY KEY,
        value TEXT NOT NULL
    );
    """,
]

"""Named secrets kept inside the encrypted cache (per-file keys, session keys).

Held here rather than in the OS keyring because they are many and because deleting the
cache key then erases all of them at once (crypto-erase).
"""

from __future__ import annotations

from app.storage.cache import Cache, db_errors


class SecretRepository:
    def __init__(self, cache: Cache) -> None:
        self._cache = cache

    def put(self, name: str, value: bytes) -> None:
        with self._cache.write() as conn:
            conn.execute(
                "INSERT INTO secrets (name, value) VALUES (?, ?) "
                "ON CONFLICT (name) DO UPDATE SET value = excluded.value",
                (name, value),
            )

    def get(self, name: str) -> bytes | None:
        with db_errors():
            row = self._cache.conn.execute(
                "SELECT value FROM secrets WHERE name = ?", (name,),
            ).fetchone()
        return bytes(row[0]) if row else None

    def delete(self, name: str) -> bool:
        with self._cache.write() as conn:
            return conn.execute("DELETE FROM secrets WHERE name = ?", (name,)).rowcount == 1

    def names(self, prefix: str = "") -> list[str]:
        escaped = prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        with db_errors():
            rows = self._cache.conn.execute(
                "SELECT name FROM secrets WHERE name LIKE ? ESCAPE '\\' ORDER BY name",
                (escaped + "%",),
            ).fetchall()
        return [r[0] for r in rows]

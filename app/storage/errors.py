"""Errors of the encrypted cache. Each has a recovery path: :meth:`Cache.rebuild`.

Their messages never contain cache content; details name pragmas, versions and counts.
"""

from __future__ import annotations

from app.core.errors import SafeConsultError


class CacheError(SafeConsultError):
    user_message = "The local encrypted cache could not be used."


class CacheUnreadable(CacheError):
    """The cache cannot be trusted or read. Recovery: rebuild it and refetch from the server."""

    user_message = (
        "The local encrypted cache cannot be read on this device. It will be rebuilt from "
        "the server; nothing on the server is lost."
    )


class CacheKeyError(CacheUnreadable):
    """The key from the key store does not open the file (another device, a lost key entry,
    or a damaged first page: SQLCipher cannot tell these apart, and neither can we)."""


class CacheCorrupt(CacheUnreadable):
    """The key opens the file but pages fail their authentication or SQLite's checks."""


class CacheRollback(CacheUnreadable):
    """The file is older than the key store says it must be: an old copy was put back."""

    user_message = (
        "The local encrypted cache is an older copy than this device last used, which can "
        "mean it was tampered with. It will be rebuilt from the server; contact IT if this "
        "happens again."
    )


class CacheBusy(CacheError):
    """Another connection holds the write lock past the busy timeout. Not damage: retry."""

    user_message = "The local cache is busy (is SafeConsult open twice?). Try again."


class CacheDiskFull(CacheError):
    """The disk (or the cache's size limit) is full. The failed write was rolled back."""

    user_message = (
        "The disk is full, so the latest data could not be saved on this workstation. "
        "Free some space; nothing already saved was lost."
    )

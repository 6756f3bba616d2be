"""Wipe this device's SafeConsult data: remote wipe, offline-limit wipe, or on request.

Order (see :mod:`app.core.wipe`): durable marker -> destroy key store entries (crypto-erase:
from here on nothing on disk is readable) -> unlink the cache, its side files, the encrypted
files and anything else in the data directory -> remove the marker -> report. The marker
lives in the config directory, outside the data directory being emptied, and names only the
(user, device) pairs whose key store entries to destroy.

At start, before anything else, the composition root calls :func:`resume_pending_wipe`: a
wipe interrupted by a crash or a power cut is finished first. The caller acknowledges the
:class:`~app.core.wipe.WipeReport` to the server (and keeps the marker logic out of that).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from app.config import Paths
from app.core.errors import SafeConsultError
from app.core.wipe import STEPS, WipeMarker, WipeMarkerError, WipeReport, WipeStep
from app.security.erase import erase_tree_contents, remove_durably, write_durably
from app.security.keystore import KeyStore

log = logging.getLogger(__name__)

MARKER_NAME = "wipe-pending.json"

KeyStoreFactory = Callable[[str, str], KeyStore]
"""(user_id, device_id) -> that pair's key store."""

StepHook = Callable[[WipeStep], None]


def marker_path(paths: Paths) -> Path:
    return paths.config / MARKER_NAME


def wipe_pending(paths: Paths) -> bool:
    return marker_path(paths).exists()


class Wiper:
    def __init__(
        self, paths: Paths, keystore_for: KeyStoreFactory, *,
        extra_files: Sequence[Path] = (), on_step: StepHook | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """``extra_files``: other files to delete (e.g. a token file a later part adds).
        ``on_step`` is called after each step (progress UI; crash tests stop the process
        there)."""
        self._paths = paths
        self._keystore_for = keystore_for
        self._extra = tuple(extra_files)
        self._on_step = on_step or (lambda step: None)
        self._clock = clock

    def wipe(
        self, reason: str, key_owners: Sequence[tuple[str, str]], *, requested_ms: int = 0,
    ) -> WipeReport:
        marker = WipeMarker(reason, requested_ms or int(time.time() * 1000), tuple(key_owners))
        start = self._clock()
        write_durably(marker_path(self._paths), marker.to_bytes())
        report = WipeReport(reason, resumed=False)
        self._done(report, WipeStep.MARKER_WRITTEN)
        return self._finish(marker, report, start)

    def resume(self) -> WipeReport | None:
        path = marker_path(self._paths)
        try:
            raw = path.read_bytes()
        except FileNotFoundError:
            return None
        start = self._clock()
        try:
            marker = WipeMarker.from_bytes(raw)
        except WipeMarkerError:
            # Damaged mid-write is impossible (atomic replace) but disks fail: a marker we
            # cannot read still means "wipe". Files go; key entries we cannot name stay
            # behind, unable to decrypt anything once the files are gone.
            marker = WipeMarker("unknown", 0, ())
        report = WipeReport(marker.reason, resumed=True, steps=[WipeStep.MARKER_WRITTEN])
        if not marker.key_owners:
            report.problems.append("marker names no key owners")
        return self._finish(marker, report, start)

    def _finish(self, marker: WipeMarker, report: WipeReport, start: float) -> WipeReport:
        keys_ok = True
        for user_id, device_id in marker.key_owners:
            try:
                self._keystore_for(user_id, device_id).destroy()
                report.key_stores_destroyed += 1
            except SafeConsultError as exc:
                # Keep going: deleting the ciphertext is an erase too. The marker stays,
                # so the key entries are retried at the next start.
                keys_ok = False
                report.problems.append(f"key store: {exc.__class__.__name__}")
        report.keys_gone_s = self._clock() - start
        if keys_ok:
            self._done(report, WipeStep.KEYS_DESTROYED)

        erased = erase_tree_contents(self._paths.data)
        for extra in self._extra:
            try:
                size = extra.stat().st_size
                extra.unlink()
                erased.files += 1
                erased.bytes += size
            except FileNotFoundError:
                continue
            except OSError:
                erased.problems.append(extra.name)
        report.files_deleted += erased.files
        report.bytes_deleted += erased.bytes
        report.problems.extend(f"file: {p}" for p in erased.problems)
        if not erased.problems:
            self._done(report, WipeStep.FILES_DELETED)

        if keys_ok and not erased.problems:
            remove_durably(marker_path(self._paths))
            self._done(report, WipeStep.MARKER_REMOVED)
        report.total_s = self._clock() - start
        log.warning(
            "wipe finished", extra={
                "event": "wipe", "count": report.files_deleted, "bytes": report.bytes_deleted,
                "state": "complete" if report.complete else "incomplete",
            },
        )
        return report

    def _done(self, report: WipeReport, step: WipeStep) -> None:
        report.steps.append(step)
        self._on_step(step)


def resume_pending_wipe(
    paths: Paths, keystore_for: KeyStoreFactory, *, on_step: StepHook | None = None,
) -> WipeReport | None:
    """Call first at start. Finishes an interrupted wipe; None when there was none."""
    return Wiper(paths, keystore_for, on_step=on_step).resume()


__all__ = ["MARKER_NAME", "STEPS", "Wiper", "marker_path", "resume_pending_wipe", "wipe_pending"]

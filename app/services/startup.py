"""What must happen at start, before any sign-in screen: finish an interrupted wipe, and on
a kiosk remove whatever a crash or power cut left behind. Both composition roots call it."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from app.config import Paths, Policy
from app.core.wipe import WipeReport
from app.security.device_binding import KeyStoreFor
from app.security.kiosk import cleanup_leftovers
from app.security.wiper import resume_pending_wipe

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class StartupReport:
    resumed_wipe: WipeReport | None
    kiosk_files_removed: int

    @property
    def notice(self) -> str:
        """A plain sentence for the sign-in screen, or empty."""
        if self.resumed_wipe is not None:
            return ("A wipe of this workstation's SafeConsult data was interrupted and has "
                    "now been completed.")
        return ""


def prepare_device(policy: Policy, paths: Paths, keystore_for: KeyStoreFor) -> StartupReport:
    resumed = resume_pending_wipe(paths, keystore_for)
    if resumed is not None:
        log.warning("interrupted wipe completed", extra={
            "event": "wipe_resumed", "state": "complete" if resumed.complete else "incomplete"})
    removed = 0
    if policy.kiosk:
        removed = cleanup_leftovers(paths).files
        if removed:
            log.warning("kiosk leftovers removed", extra={"event": "kiosk_cleanup",
                                                          "count": removed})
    return StartupReport(resumed, removed)

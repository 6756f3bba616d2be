"""The signed-in client's update check: once per sign-in, in the background.

What it does is :class:`app.services.updates.UpdateService`'s (TUF: signed, fresh, no
rollback, newer only); this module runs it off the GUI thread, records the outcome through
the session's one audit call (``update.check``: status, version, reason code -- no PHI),
and shows a banner when there is something to say: a verified release staged for IT's
installer, or an update refused (a security event the user should mention to IT). "Up to
date" and "server unreachable" stay quiet. No trust root installed (``update-root.json``
beside the machine policy) or no pinned CA: no check at all. A shared cart (kiosk) only
checks: staging an installer into a data folder that is emptied at sign-out would be waste.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from PySide6.QtWidgets import QWidget

from app.ui.asyncbridge import TaskRunner
from app.ui.i18n import fill
from app.ui.notice_banner import NoticeBanner
from app.ui.session_link import SessionLink


class UpdateBanner(NoticeBanner):
    """One line about an update; the user may close it (it comes back at the next sign-in
    while the situation lasts)."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__("updateBanner", parent)

    def show_result(self, status: str, version: str) -> None:
        if status == "staged":
            self.show_notice("ready", fill(self.tr(
                "SafeConsult %1 is downloaded and its signature verified, ready for IT to "
                "install. You can keep working."), version), warning=False)
        elif status == "refused":
            self.show_notice("refused", self.tr(
                "An update offered by the server did not pass its security checks and was "
                "not installed. SafeConsult keeps working. Please tell IT (the details are in "
                "the audit log)."), warning=True)
        elif status == "available":
            self.show_notice("available", fill(self.tr(
                "SafeConsult %1 is available. IT installs it on this shared workstation."),
                version), warning=False)
        else:
            self.clear()


def _outcome(status: str) -> str:
    return {"refused": "refused", "unavailable": "failed"}.get(status, "ok")


def configure_updates(workspace: Any, *, runner: TaskRunner, session: SessionLink,
                      trust_root: Path | None = None) -> UpdateBanner | None:
    """Start this sign-in's update check; None when there is nothing to check against."""
    from app.services.updates import UpdateService, update_root_path

    service = session.service
    if service is None or not service.policy.pinned_ca_pem:
        return None
    root = trust_root or update_root_path()
    if not root.is_file():
        return None
    updates = UpdateService(server_url=service.policy.server_url,
                            ca_pem=service.policy.pinned_ca_pem,
                            state_dir=service.paths.data / "updates", trust_root=root)
    banner = UpdateBanner()
    banner.setParent(workspace)
    workspace.add_banner(banner)
    workspace.update_banner = banner  # tests and diagnostics
    kiosk = service.policy.kiosk

    def done(result: Any) -> None:
        audit = session.service.audit if session.service is not None else None
        if audit is not None:
            audit.record("update.check", object_type="release", object_id=result.version or None,
                         outcome=_outcome(result.status),
                         detail={"status": result.status, "reason": result.reason})
        banner.show_result(result.status, result.version)

    check = updates.check_async() if kiosk else updates.apply_async()
    runner.run_task(check, owner=banner, on_result=done)
    return banner

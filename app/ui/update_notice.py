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

from PySide6.QtCore import Signal
from PySide6.QtWidgets import QFrame, QHBoxLayout, QLabel, QToolButton, QWidget

from app.ui.asyncbridge import TaskRunner
from app.ui.i18n import fill
from app.ui.session_link import SessionLink


class UpdateBanner(QFrame):
    """One line about an update; the user may close it (it comes back at the next sign-in
    while the situation lasts)."""

    dismissed = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("updateBanner")
        self.kind = ""
        self.label = QLabel()
        self.label.setWordWrap(True)
        self.close_button = QToolButton()
        self.close_button.setText("×")
        self.close_button.setAutoRaise(True)
        self.close_button.clicked.connect(self._close)
        row = QHBoxLayout(self)
        row.setContentsMargins(12, 6, 6, 6)
        row.addWidget(self.label, 1)
        row.addWidget(self.close_button)
        self.hide()

    def show_result(self, status: str, version: str) -> None:
        if status == "staged":
            self.kind = "ready"
            self.label.setText(fill(self.tr(
                "SafeConsult %1 is downloaded and its signature verified, ready for IT to "
                "install. You can keep working."), version))
        elif status == "refused":
            self.kind = "refused"
            self.label.setText(self.tr(
                "An update offered by the server did not pass its security checks and was "
                "not installed. SafeConsult keeps working. Please tell IT (the details are in "
                "the audit log)."))
        elif status == "available":
            self.kind = "available"
            self.label.setText(fill(self.tr(
                "SafeConsult %1 is available. IT installs it on this shared workstation."),
                version))
        else:
            self.kind = ""
            self.hide()
            return
        # Information for a ready update; a refused one is drawn like other warnings.
        accent = "#a3241a" if self.kind == "refused" else "palette(highlight)"
        self.setStyleSheet(f"QFrame#updateBanner {{ border: 1px solid {accent}; "
                           "border-left: 6px solid " + accent + "; border-radius: 4px; }")
        self.close_button.setToolTip(self.tr("Close"))
        self.show()

    def _close(self) -> None:
        self.hide()
        self.dismissed.emit()


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

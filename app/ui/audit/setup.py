"""Wires issue #8's client side into a signed-in workspace (called from
app/ui/workspace_setup.py once per sign-in):

* the Consults view gets the user's grants (with their expiry) and, for clinical roles,
  *Emergency access…*;
* the workspace gets the emergency-access banner, shown while a break-glass grant runs;
* the Admin view gets the page for the role (auditor: access review; IT admin: approvals).

Break-glass requests are recorded through the session's one audit call (``AuditService``),
besides the server's own entry.
"""

from __future__ import annotations

from typing import Any

from app.ui.asyncbridge import TaskRunner
from app.ui.session_link import SessionLink

# Roles that treat patients: they may need emergency access. The server lets anyone signed
# in ask (and audits it); the UI offers it where it makes sense.
CLINICAL_ROLES = frozenset({"physician", "nurse", "consultant"})


def configure_access(workspace: Any, user: Any, *, runner: TaskRunner,
                     session: SessionLink) -> None:
    from app.services.access_review import (
        AccessReviewService,
        BreakGlassService,
        capabilities,
    )
    from app.ui.banner import EmergencyAccessBanner

    if session.service is None:
        return  # no live session (nothing to show; the server would refuse everything)

    def transport() -> Any:
        service = session.service
        return service.transport if service is not None else None

    def record(action: str, **fields: Any) -> None:
        service = session.service
        if service is not None and service.audit is not None:
            service.audit.record(action, **fields)

    emergency = BreakGlassService(transport, record=record)
    banner = EmergencyAccessBanner()
    banner.setParent(workspace)
    workspace.add_banner(banner)
    emergency.changed.connect(lambda: banner.set_grants(emergency.active()))
    banner.expired.connect(emergency.expire)
    consults = workspace.views["consults"]
    consults.configure(runner=runner, service=emergency)
    consults.emergency_button.setVisible(user.role in CLINICAL_ROLES)
    workspace.emergency_banner = banner  # tests and diagnostics

    if capabilities(user.role).any:
        from app.services.device_admin import DeviceAdminService

        devices = (DeviceAdminService(transport, own_device_id=user.device_id)
                   if user.role == "it_admin" else None)
        workspace.views["admin"].configure(
            runner=runner, service=AccessReviewService(transport), role=user.role,
            devices=devices)

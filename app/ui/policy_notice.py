"""When this computer's machine policy was refused (unsigned, badly signed, expired, invalid),
the client runs on the safe defaults. The About dialog says why; this module also says so
where the user looks -- a warning above the workspace at every sign-in -- and records it in
the device's audit chain (``policy.change``, outcome ``refused``), so IT sees which machines
run without their policy."""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import QCoreApplication

from app.ui.i18n import fill
from app.ui.notice_banner import NoticeBanner
from app.ui.session_link import SessionLink


def configure_policy_notice(workspace: Any, *, session: SessionLink) -> NoticeBanner | None:
    problem = session.state.policy_problem
    if not problem:
        return None
    banner = NoticeBanner("policyBanner")
    banner.setParent(workspace)
    workspace.add_banner(banner)
    workspace.policy_banner = banner  # tests and diagnostics
    banner.show_notice("refused", fill(QCoreApplication.translate(
        "PolicyNotice", "This computer's machine policy was refused, so SafeConsult runs on "
        "its safe defaults: %1 Please tell IT."), problem), warning=True)
    service = session.service
    if service is not None and service.audit is not None:
        # Policy texts name files and keys, never patients; the audit keeps 128 characters.
        service.audit.record("policy.change", object_type="policy", outcome="refused",
                             detail={"state": "defaults",
                                     "reason": " ".join(problem.split())[:128]})
    return banner

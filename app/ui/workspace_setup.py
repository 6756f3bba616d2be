"""Gives the signed-in workspace's views the services they work with.

Called by the main window once per sign-in (the ``configure_workspace`` hook), so that the
composition root stays small and each feature's wiring lives in one place.
"""

from __future__ import annotations

from typing import Any

from app.ui.asyncbridge import TaskRunner
from app.ui.session_link import SessionLink


def configure_workspace(workspace: Any, user: Any, *, runner: TaskRunner,
                        session: SessionLink) -> None:
    from app.services.imaging import ImagingService, ViewerIdentity

    workspace.views["images"].configure(
        runner=runner, service=ImagingService(audit=session.record_series_action),
        identity=ViewerIdentity(user.username, user.device_id))

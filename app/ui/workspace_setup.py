"""Gives the signed-in workspace's views the services they work with.

Called by the main window once per sign-in (the ``configure_workspace`` hook), so that the
composition root stays small and each feature's wiring lives in one place.

Chat: one :class:`~app.services.chat.ChatService` per signed-in session, run here as one
TaskRunner task (keys published, rooms and history caught up, then the sync and push loops).
It keeps running while the session is locked -- the lock hides PHI, it does not stop messages
arriving (docs/device-protection.md) -- and stops when the session signs out or is wiped (the
cache closes), when the workspace of that sign-in goes, or when the window shuts down
(the runner cancels its tasks).

Files: one :class:`~app.services.transfers.TransferEngine` per session (chat files and
studies). At sign-in a second task resumes this device's transfers that a restart
interrupted (``ChatFiles.resume_pending``): they show in the chat's transfer panel, a
finished upload's file message goes to its room once, a download lands in the encrypted file
store; a recording's share is finished and announced once, a study share is ended and the user
told (the study and recording services register with ``ChatFiles`` here and in
``app/ui/call/setup.py``, before that task runs). A kiosk session's cache lived in memory
only: nothing is left to resume.
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
    from app.ui.imaging.snapshot import configure_snapshot

    if session.service is not None:
        configure_snapshot(workspace.views["images"], state=session.state,
                           policy=session.service.policy)
    configure_chat(workspace, runner=runner, session=session)
    from app.ui.call.setup import configure_calls

    configure_calls(workspace, runner=runner, session=session)
    from app.ui.policy_notice import configure_policy_notice
    from app.ui.update_notice import configure_updates

    configure_policy_notice(workspace, session=session)
    configure_updates(workspace, runner=runner, session=session)
    from app.ui.audit.setup import configure_access

    configure_access(workspace, user, runner=runner, session=session)


def configure_chat(workspace: Any, *, runner: TaskRunner, session: SessionLink) -> None:
    """Run the session's chat and hand it to the chat view (no-op without a live session)."""
    from app.services.chat import ChatService
    from app.services.verification import VerificationService

    service = session.service
    if service is None or service.cache is None or service.device is None:
        return
    from app.services.transfers import TransferEngine

    chat = ChatService(service)
    verification = VerificationService(chat, audit=service.audit)
    engine = TransferEngine.for_session(service)  # one per session: chat files and studies
    from app.services.transfers.chat_files import ChatFiles

    files = ChatFiles(engine, chat)
    from app.services.room_patient import RoomPatientService

    user = service.snapshot.user
    patients = RoomPatientService(chat, role=user.role if user else "", audit=service.audit)
    view = workspace.views["chat"]
    view.unreadChanged.connect(lambda count: workspace.set_badge("chat", count))
    view.configure(runner=runner, chat=chat, verification=verification,
                   app_state=session.state, transfers=engine, patients=patients,
                   chat_files=files)
    view.destroyed.connect(lambda *_: verification.close())
    view.destroyed.connect(lambda *_: patients.close())
    runner.run_task(chat.run(), owner=view, on_error=view.show_message)
    runner.run_task(files.resume_pending(), owner=view, on_error=view.show_message)
    workspace.chat_service = chat  # tests and diagnostics
    workspace.transfer_engine = engine  # tests and diagnostics
    workspace.chat_files = files  # tests and diagnostics
    workspace.room_patients = patients  # tests and diagnostics
    configure_study_sharing(workspace, chat, service, engine)


def configure_study_sharing(workspace: Any, chat: Any, service: Any, engine: Any) -> None:
    """Images: share studies into the session's rooms, open shared ones, view together."""
    from app.services.study_share import StudyShareService

    images = workspace.views["images"]
    sharing = StudyShareService(
        chat, engine, audit=service.audit,
        work_dir=service.cache.directory / "share", own_ed25519=service.device.identity.ed25519,
        patients=getattr(workspace, "room_patients", None),
        files=getattr(workspace, "chat_files", None))  # an interrupted share: at sign-in
    images.configure_consult(chat=chat, sharing=sharing, device_id=service.device.device_id)
    images.destroyed.connect(lambda *_: sharing.close())
    workspace.study_sharing = sharing  # tests and diagnostics

"""Calls for the signed-in workspace: one CallsService per session (its push socket runs as a
TaskRunner task owned by the chat view, stopped -- every call hung up -- when that view goes),
a "Start video consult" button in the chat view's room header, and the controller.
"""

from __future__ import annotations

import asyncio
from typing import Any

from PySide6.QtCore import QCoreApplication
from PySide6.QtWidgets import QPushButton

from app.ui.asyncbridge import TaskRunner
from app.ui.call.controller import CallController
from app.ui.call.tiles import FrameFeed


async def _run_calls(calls: Any) -> None:
    try:
        await calls.start()
        await asyncio.Event().wait()  # until cancelled (the owner went)
    finally:
        await calls.stop()


def configure_calls(workspace: Any, *, runner: TaskRunner, session: Any) -> CallController | None:
    from app.services.calls import CallsService
    from app.services.recording import RecordingService
    from app.services.transfers import TransferEngine
    from app.ui.chat.texts import display_name

    chat = getattr(workspace, "chat_service", None)
    service = session.service
    if chat is None or service is None or service.device is None:
        return None
    view = workspace.views["chat"]
    feed = FrameFeed(runner, view)
    # Remote audio plays on the system's default speaker until the pre-join chooses another
    # (an incoming call accepted without the pre-join too); none found: no sound out.
    calls = CallsService(service, chat, frame_sink=feed, announce=True, speaker="default")
    # Recordings are shared in the consult's room after stop (docs/calls.md, "Recording");
    # a share a restart interrupted goes on at sign-in (ChatFiles.resume_pending).
    recording = RecordingService(calls, chat=chat, engine=TransferEngine.for_session(service),
                                 files=getattr(workspace, "chat_files", None))
    controller = CallController(
        calls, runner=runner, feed=feed, state=session.state,
        name_of=lambda user_id: display_name(chat.username(user_id), user_id),
        share_window=workspace.window(), recording=recording, parent=view)
    runner.run_task(_run_calls(calls), owner=view, on_error=view.show_message)
    add_call_button(view, controller)
    from app.ui.call.recordings import add_recordings_button

    # Retention (Policy.retention_days): at sign-in and whenever the chat's sweep runs.
    sweep = _recording_sweep(recording)
    sweep()
    chat.purged.connect(lambda _rooms: sweep())
    add_recordings_button(view, recording, runner,
                          name_of=lambda user_id: display_name(chat.username(user_id), user_id))
    workspace.calls_controller = controller  # tests and diagnostics
    return controller


def _recording_sweep(recording: Any) -> Any:
    import logging

    from app.core.errors import SafeConsultError

    def sweep() -> None:
        try:
            recording.purge()
        except (SafeConsultError, OSError) as exc:  # retried at the next sweep
            logging.getLogger(__name__).warning("recording retention sweep failed", extra={
                "event": "recording_purge_failed", "reason_code": exc.__class__.__name__})

    return sweep


def add_call_button(view: Any, controller: CallController) -> QPushButton:
    """"Start video consult" in the chat view's room header, for a joined room; while
    another member's call runs in the room (its host announced it), "Join video consult in
    progress", which asks that host to let us in (the waiting room)."""
    translate = QCoreApplication.translate
    button = QPushButton(translate("CallView", "Start video consult"))
    button.setObjectName("startCall")

    def label(*_args: Any) -> None:
        room_id = view.current_room
        running = room_id is not None and controller.running_call(room_id) is not None
        button.setText(translate("CallView", "Join video consult in progress") if running
                       else translate("CallView", "Start video consult"))

    def start() -> None:
        room_id = view.current_room
        chat = view.chat
        if room_id is None or chat is None:
            return
        if chat.state.room_state(room_id) != "joined":
            view.show_message(translate(
                "CallView", "Join this consult before starting a video consult."))
            return
        label()
        if controller.running_call(room_id) is not None:
            controller.prepare_join(room_id, view.room_title.text(), parent=view.window())
            return
        controller.prepare_call(room_id, view.room_title.text(), parent=view.window())

    button.clicked.connect(start)
    from app.ui.observe import observe

    observe(controller.calls.active_changed, label, button)
    view.rooms.roomChosen.connect(label)
    button.update_label = label  # tests, and whoever opens a room programmatically
    header = view.room_header
    header.insertWidget(header.indexOf(view.members_button), button)
    view.call_button = button
    return button

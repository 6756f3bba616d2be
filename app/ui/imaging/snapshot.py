"""Snapshot: what the active pane shows, with the watermark burned in, to the clipboard or
into a consult room as an encrypted image attachment.

"What the pane shows" is taken from the screen: the pane's page (the canvas with its slice,
window, zoom, pan, orientation, measurements and corner text, or the ECG paper) rendered to
an image, without the on-screen watermark overlay -- the watermark is then burned into the
pixels by the same code as export and print (app/imaging/watermark.py, verb "Snapshot").
Each snapshot that reaches its target is audited once (``snapshot``, the series, where it
went). The snapshot lives in memory only.

Toolbar: *Snapshot* (S) copies to the clipboard; its menu also has *Send to consult room…*
(Shift+S). While viewing together, or with a shared study open, the room is that study's
room; otherwise the user picks one of the rooms they joined, and a snapshot showing a
patient ID goes to a room not linked to that patient only after a confirmation.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Coroutine
from typing import Any

import numpy as np
from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import QMenu, QMessageBox, QToolButton

from app.services.imaging import Snapshot
from app.services.snapshot import patient_room, send_to_room
from app.ui.imaging.qimage import ArrayImage, to_array


class SnapshotClipboard:
    """The snapshot this app put on the system clipboard, taken off again when the session
    locks, signs out or the app quits -- unless something else was copied since (the
    clipboard is then the user's, not ours). A plain object: it outlives the view."""

    def __init__(self) -> None:
        self.held: np.ndarray | None = None

    def put(self, pixels: np.ndarray) -> None:
        # copy(): an image that owns its pixels (ArrayImage only borrows the array's)
        QGuiApplication.clipboard().setImage(ArrayImage(pixels).image.copy())
        self.held = pixels

    def clear(self) -> bool:
        """Take our snapshot off the clipboard if it is still there; True when it was."""
        held, self.held = self.held, None
        if held is None or QGuiApplication.instance() is None:
            return False
        clipboard = QGuiApplication.clipboard()
        image = clipboard.image()
        if image.isNull() or not np.array_equal(to_array(image), held):
            return False
        clipboard.clear()
        return True


def configure_snapshot(images: Any, *, state: Any, policy: Any) -> None:
    """The session's side of the viewer's snapshot: policy ``allow_snapshot`` (IT may
    remove the feature), and our snapshot taken off the clipboard when the session locks
    (``state``: the AppState), signs out, the workspace goes or the app quits."""
    images.snapshot_allowed = bool(policy.allow_snapshot)
    images._enable()
    guard = images.snapshot_clipboard

    def locked(on: bool) -> None:
        if on:
            guard.clear()

    def user(value: object) -> None:
        if value is None:
            guard.clear()

    def gone(*_args: object) -> None:  # the workspace went (sign-out, wipe, window closed)
        guard.clear()
        with contextlib.suppress(Exception):
            state.events.locked.disconnect(locked)
            state.events.user.disconnect(user)

    state.events.locked.connect(locked)
    state.events.user.connect(user)
    images.destroyed.connect(gone)
    app = QGuiApplication.instance()
    if app is not None:
        app.aboutToQuit.connect(guard.clear)


class ViewerSnapshotMixin:
    """The snapshot part of :class:`app.ui.views.images.ImagesView`."""

    # -- building ----------------------------------------------------------------------------

    def _build_snapshot(self) -> None:
        self.snapshot_copy_action = self._action(lambda: self.snapshot_to_clipboard(),
                                                 shortcut="S")
        self.snapshot_room_action = self._action(lambda: self.snapshot_to_room(),
                                                 shortcut="Shift+S")
        self.snapshot_button = QToolButton()
        self.snapshot_button.setObjectName("snapshotButton")
        self.snapshot_button.setPopupMode(QToolButton.ToolButtonPopupMode.MenuButtonPopup)
        self.snapshot_button.setDefaultAction(self.snapshot_copy_action)
        self.snapshot_menu = QMenu(self)
        self.snapshot_menu.addAction(self.snapshot_copy_action)
        self.snapshot_menu.addAction(self.snapshot_room_action)
        self.snapshot_button.setMenu(self.snapshot_menu)
        # After the consult buttons (Share to consult, View together): at hand while
        # viewing together, never behind the toolbar's overflow.
        self._snapshot_slot = self.toolbar.insertWidget(self._after_consult(),
                                                        self.snapshot_button)
        self.last_snapshot: Snapshot | None = None  # tests
        self.snapshot_allowed = True  # policy allow_snapshot (configure_snapshot)
        self.snapshot_clipboard = SnapshotClipboard()

    def _after_consult(self):  # type: ignore[no-untyped-def]
        actions = self.toolbar.actions()
        for n, action in enumerate(actions):
            if self.toolbar.widgetForAction(action) is self.coview_button:
                return actions[n + 1] if n + 1 < len(actions) else None
        return None

    def _retranslate_snapshot(self) -> None:
        self.snapshot_copy_action.setText(self.tr("Snapshot"))
        self.snapshot_copy_action.setToolTip(self.tr(
            "Copy what this pane shows, with the watermark, to the clipboard (S)"))
        self.snapshot_room_action.setText(self.tr("Send snapshot to consult room…"))
        self.snapshot_button.setText(self.tr("Snapshot"))

    def _enable_snapshot(self) -> None:
        if not hasattr(self, "snapshot_button"):
            return
        # "is not None": a SeriesHandle has a length, 0 for an ECG
        shown = getattr(self, "active", None) is not None and self.active.handle is not None
        shown = shown and self.snapshot_allowed
        self._snapshot_slot.setVisible(self.snapshot_allowed)
        self.snapshot_copy_action.setEnabled(shown)
        self.snapshot_room_action.setEnabled(shown and self.sharing is not None)
        self.snapshot_button.setEnabled(shown)

    # -- taking ------------------------------------------------------------------------------

    def _take_snapshot(self) -> Coroutine[Any, Any, Snapshot] | None:
        """Grab the active pane's view now; the coroutine burns the watermark in (in a
        worker) and encodes it."""
        pane = self.active
        handle = pane.handle
        if handle is None or not self.snapshot_allowed:
            return None
        pixels = to_array(pane.pages.grab().toImage())
        fields = self._service.watermark(self.identity, handle)
        return self._service.snapshot(pixels, fields, handle.object_id)

    def snapshot_to_clipboard(self) -> asyncio.Future | None:
        taking = self._take_snapshot()
        if taking is None:
            return None

        async def run() -> Snapshot:
            snapshot = await taking
            self.snapshot_clipboard.put(snapshot.pixels)
            try:
                self._service.record_snapshot(snapshot, "clipboard")
            except Exception:
                self.snapshot_clipboard.clear()  # not audited: not left on the clipboard
                raise
            self.last_snapshot = snapshot
            return snapshot

        return self._runner.run_task(
            run(), owner=self,
            on_result=lambda _s: self.show_message(self.tr(
                "Snapshot with watermark copied to the clipboard.")),
            on_error=self.show_message)

    def snapshot_to_room(self, room_id: str | None = None, *,
                         confirmed: bool = False) -> asyncio.Future | None:
        """Send a snapshot of the active pane into a consult room (``room_id``: by default
        the co-view or shared study's room, else the user's choice)."""
        if (self.sharing is None or self.consult_chat is None or self.active.handle is None
                or not self.snapshot_allowed):
            return None
        handle = self.active.handle
        taking = self._take_snapshot()  # the view now, before any question (cine runs on)
        if taking is None:
            return None
        if room_id is None:
            room_id = self._snapshot_room()
        if room_id is None or not (confirmed or self._snapshot_may_go(room_id, handle)):
            taking.close()
            return None
        chat, engine, service = self.consult_chat, self.sharing.engine, self._service

        async def run() -> Snapshot:
            snapshot = await taking
            await send_to_room(service, chat, engine, snapshot, room_id)
            self.last_snapshot = snapshot
            return snapshot

        return self._runner.run_task(
            run(), owner=self,
            on_result=lambda _s: self.show_message(self.tr(
                "Snapshot with watermark sent to the consult room.")),
            on_error=self.show_message)

    def _snapshot_room(self) -> str | None:
        coview = self.coview
        if coview is not None and coview.active:
            return coview.room_id
        if self.shared_open is not None:
            return self.shared_open.shared.room_id
        return self._choose_room()

    def _snapshot_may_go(self, room_id: str, handle) -> bool:  # type: ignore[no-untyped-def]
        """A snapshot carries the patient ID in its watermark: into the room the study was
        shared in, or the patient's own room, it goes; elsewhere only once confirmed."""
        pid = handle.patient_id.reveal()
        opened = self.shared_open
        if not pid or (opened is not None and opened.shared.room_id == room_id):
            return True
        if patient_room(getattr(self.sharing, "patients", None), room_id, pid):
            return True
        box = QMessageBox(self)
        box.setObjectName("snapshotConfirm")
        box.setIcon(QMessageBox.Icon.Warning)
        box.setWindowTitle(self.tr("Send snapshot"))
        box.setText(self.tr("The snapshot shows the patient ID in its watermark, and this "
                            "room is not linked to this patient. Send it to this room? "
                            "It is recorded in the audit trail."))
        box.setStandardButtons(QMessageBox.StandardButton.Ok
                               | QMessageBox.StandardButton.Cancel)
        box.setDefaultButton(QMessageBox.StandardButton.Cancel)
        return box.exec() == QMessageBox.StandardButton.Ok


__all__ = ["ViewerSnapshotMixin"]

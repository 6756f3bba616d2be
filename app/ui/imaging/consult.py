"""The viewer in a consult: studies shared in rooms, and "view together" (co-viewing).

:class:`SharedStudiesPanel` lists the studies shared in the user's rooms (newest first);
opening one downloads it with progress, checks the sender device's signatures and digests
(app/services/study_share.py) and shows it with a verified/unverified banner.

:class:`CoviewBinding` ties the primary pane's canvas to a
:class:`~app.services.coview.CoviewService`: as presenter it publishes the canvas state on
every change (the service coalesces to 10 updates/s); as follower it applies the presenter's
state (series by the shared manifest's id, slice, window, zoom/pan, orientation, invert,
measurements) and draws the presenter's pointer. Pixels are always rendered locally.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable

from PySide6.QtCore import QObject, QPointF, Qt, Signal
from PySide6.QtWidgets import (
    QInputDialog,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QMenu,
    QMessageBox,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from app.core.coview import FOLLOWER, PRESENTER, CoviewState, SharedMeasurement
from app.core.imaging_types import WindowLevel
from app.services.coview import CoviewService, RemoteView
from app.services.imaging import OpenResult, SeriesHandle
from app.services.study_share import SharedStudy
from app.ui.i18n import fill
from app.ui.imaging.canvas import ANGLE, DISTANCE, ImageCanvas
from app.ui.phi import mark_phi


class SharedStudiesPanel(QWidget):
    """Studies shared in the user's rooms; activating one asks to open it."""

    openRequested = Signal(object)  # SharedStudy

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("sharedStudies")
        column = QVBoxLayout(self)
        column.setContentsMargins(6, 6, 6, 6)
        self.heading = QLabel()
        font = self.heading.font()
        font.setBold(True)
        self.heading.setFont(font)
        self.list = QListWidget()
        self.list.setObjectName("sharedStudyList")
        mark_phi(self.list)  # study descriptions are patient data
        self.list.itemActivated.connect(self._activated)
        column.addWidget(self.heading)
        column.addWidget(self.list, 1)
        self._studies: dict[str, SharedStudy] = {}
        self.names: Callable[[str], str] = lambda user_id: user_id
        self.retranslate()

    def retranslate(self) -> None:
        self.heading.setText(self.tr("Shared studies"))
        self.list.setAccessibleName(self.tr("Studies shared in your consult rooms"))

    def add(self, shared: SharedStudy) -> None:
        if shared.study_id in self._studies:
            return
        self._studies[shared.study_id] = shared
        m = shared.manifest
        text = fill(self.tr("%1 · %2 image(s) · from %3"),
                    m.description.reveal() or self.tr("Study"), str(len(m.files)),
                    self.names(shared.sender))
        if m.deidentified:
            text += " · " + self.tr("de-identified")
        item = QListWidgetItem(text)
        item.setData(Qt.ItemDataRole.UserRole, shared.study_id)
        self.list.insertItem(0, item)
        self.show()

    def studies(self) -> list[SharedStudy]:
        return list(self._studies.values())

    def _activated(self, item: QListWidgetItem) -> None:
        shared = self._studies.get(item.data(Qt.ItemDataRole.UserRole))
        if shared is not None:
            self.openRequested.emit(shared)


def canvas_state(canvas: ImageCanvas, study_id: str, series_id: str,
                 pointer: tuple[float, float] | None) -> CoviewState:
    s = canvas.state
    window = s.window
    items = canvas.measurements.get(s.index, [])
    return CoviewState(
        study=study_id, series=series_id, index=s.index,
        center=window.center if window is not None else None,
        width=window.width if window is not None else None,
        zoom=s.zoom, pan=(round(s.pan.x(), 1), round(s.pan.y(), 1)), rotation=s.rotation,
        flip_h=s.flip_h, flip_v=s.flip_v, invert=s.invert, pointer=pointer,
        measurements=tuple(SharedMeasurement(m.kind, tuple(m.points)) for m in items
                           if m.result is not None)[:32])


class CoviewBinding(QObject):
    """One viewer's side of a co-view session."""

    statusChanged = Signal(str)  # who presents, for the view's co-view label

    def __init__(self, service: CoviewService, canvas: ImageCanvas, *,
                 study_id: Callable[[], str], series_id_of: Callable[[SeriesHandle], str],
                 handle_of: Callable[[str], SeriesHandle | None],
                 show: Callable[[SeriesHandle], None], names: Callable[[str], str],
                 parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.service = service
        self.canvas = canvas
        self._study_id, self._series_id_of = study_id, series_id_of
        self._handle_of, self._show, self._names = handle_of, show, names
        self._pointer: tuple[float, float] | None = None
        self._applying = False
        self.applied = 0
        canvas.stateChanged.connect(self._local_changed)
        canvas.measurementAdded.connect(lambda _item: self._local_changed())
        canvas.pointerMoved.connect(self._pointer_moved)
        service.remote_view.connect(self._remote)
        service.participants_changed.connect(self._participants)

    def disconnect_all(self) -> None:
        for signal, slot in ((self.canvas.stateChanged, self._local_changed),
                             (self.canvas.pointerMoved, self._pointer_moved)):
            with contextlib.suppress(RuntimeError, TypeError):
                signal.disconnect(slot)
        with contextlib.suppress(ValueError, RuntimeError):
            self.service.remote_view.disconnect(self._remote)
            self.service.participants_changed.disconnect(self._participants)
        self.canvas.set_remote_pointer(None)

    def _participants(self, _participants: object) -> None:
        self._status()

    # -- local -> room -----------------------------------------------------------------------

    def current(self) -> CoviewState | None:
        handle = self.canvas.handle
        if handle is None:
            return None
        series_id = self._series_id_of(handle)
        if not series_id:
            return None
        return canvas_state(self.canvas, self._study_id(), series_id, self._pointer)

    def _local_changed(self) -> None:
        if self._applying or self.service.role != PRESENTER:
            return
        state = self.current()
        if state is not None:
            self.service.publish(state)

    def _pointer_moved(self, point: tuple[float, float] | None) -> None:
        self._pointer = (round(point[0], 1), round(point[1], 1)) if point is not None else None
        self._local_changed()

    # -- room -> local -----------------------------------------------------------------------

    def _remote(self, view: RemoteView) -> None:
        if self.service.role != FOLLOWER:
            return
        state = view.state
        if state.study != self._study_id():
            return  # another study: the follower opens the shared study first
        handle = self._handle_of(state.series)
        if handle is None:
            return
        self._applying = True
        try:
            if self.canvas.handle is not handle:
                self._show(handle)
            window = (WindowLevel(state.center, state.width, "custom")
                      if state.center is not None and state.width is not None else None)
            self.canvas.apply_view(index=state.index, window=window, zoom=state.zoom,
                                   pan=QPointF(*state.pan), rotation=state.rotation,
                                   flip_h=state.flip_h, flip_v=state.flip_v,
                                   invert=state.invert)
            self.canvas.measurements[self.canvas.state.index] = []
            for m in state.measurements:
                kind = DISTANCE if m.kind == DISTANCE else ANGLE
                self.canvas.add_measurement(kind, list(m.points))
            self.canvas.set_remote_pointer(state.pointer, self._names(view.user_id))
            self.applied += 1
        finally:
            self._applying = False
        self._status()

    def _status(self) -> None:
        role = self.service.role
        if not role:
            text = ""
        elif role == PRESENTER:
            followers = [p for p in self.service.participants() if p.role == FOLLOWER]
            text = fill(self.tr("Presenting · %1 following"), str(len(followers)))
        else:
            presenter = self.service.presenter()
            text = (fill(self.tr("Following %1"), self._names(presenter.user_id))
                    if presenter is not None else self.tr("Waiting for a presenter…"))
        self.statusChanged.emit(text)


class ViewerConsultMixin:
    """The consult part of :class:`app.ui.views.images.ImagesView`: "Share to consult…",
    "Shared studies", "View together". Kept here so the viewer's own file stays about
    viewing. Works only once :meth:`configure_consult` gave it the session's services."""

    # -- building ----------------------------------------------------------------------------

    def _build_consult(self) -> None:
        self.consult_chat = None
        self.sharing = None
        self.coview: CoviewService | None = None
        self.coview_binding: CoviewBinding | None = None
        self.shared_open = None  # OpenedStudy shown now
        self._series_by_id: dict[str, SeriesHandle] = {}
        self._device_id = ""
        bar = self.toolbar
        # Beside Open files/folder: where a consult starts, and never behind the overflow.
        after_open = bar.actions()[2] if len(bar.actions()) > 2 else None
        self.share_action = self._action(lambda: self.share_to_consult())
        bar.insertAction(after_open, self.share_action)
        self.coview_menu = QMenu(self)
        self.present_action = self._action(lambda: self.start_coview(PRESENTER))
        self.follow_action = self._action(lambda: self.start_coview(FOLLOWER))
        self.stop_coview_action = self._action(lambda: self.stop_coview())
        for action in (self.present_action, self.follow_action, self.stop_coview_action):
            self.coview_menu.addAction(action)
        self.coview_button = QToolButton()
        self.coview_button.setObjectName("coviewButton")
        self.coview_button.setMenu(self.coview_menu)
        self.coview_button.setPopupMode(QToolButton.ToolButtonPopupMode.InstantPopup)
        bar.insertWidget(after_open, self.coview_button)
        self.shared_panel = SharedStudiesPanel()
        self.shared_panel.openRequested.connect(self.open_shared_study)
        self.shared_panel.names = self._name_of
        self.shared_panel.setMaximumWidth(260)
        self.shared_panel.hide()
        self.split.insertWidget(0, self.shared_panel)
        self.share_status = QLabel()
        self.share_status.setObjectName("sharedStudyStatus")
        self.share_status.setWordWrap(True)
        self.share_status.hide()
        self.coview_status = QLabel()
        self.coview_status.setObjectName("coviewStatus")
        self.coview_status.hide()
        outer = self.layout()
        outer.insertWidget(2, self.share_status)
        outer.insertWidget(3, self.coview_status)
        self._enable_consult()

    def _retranslate_consult(self) -> None:
        self.share_action.setText(self.tr("Share to consult…"))
        self.coview_button.setText(self.tr("View together"))
        self.present_action.setText(self.tr("Present to the room"))
        self.follow_action.setText(self.tr("Follow the presenter"))
        self.stop_coview_action.setText(self.tr("Stop viewing together"))
        self.shared_panel.retranslate()

    def _enable_consult(self) -> None:
        live = self.sharing is not None
        paths = [p for h in self.handles for p in h.source_paths()]
        self.share_action.setEnabled(live and bool(paths))
        study = self.shared_open is not None
        active = self.coview is not None and self.coview.active
        self.present_action.setEnabled(study and not active)
        self.follow_action.setEnabled(study and not active)
        self.stop_coview_action.setEnabled(active)
        self.coview_button.setEnabled(live and study)

    # -- wiring ------------------------------------------------------------------------------

    def configure_consult(self, *, chat: object, sharing: object, device_id: str) -> None:
        """The session's chat (rooms, names, room events) and study sharing."""
        self.consult_chat = chat
        self.sharing = sharing
        self._device_id = device_id
        for shared in sharing.studies():
            self.shared_panel.add(shared)
        sharing.shared.connect(self._study_shared)
        self._enable_consult()

    def _name_of(self, user_id: str) -> str:
        chat = self.consult_chat
        return (chat.username(user_id) if chat is not None else None) or user_id

    def _study_shared(self, shared: SharedStudy) -> None:
        self.shared_panel.add(shared)

    # -- sharing -----------------------------------------------------------------------------

    def share_to_consult(self, room_id: str | None = None,
                         mode: str | None = None) -> object | None:
        """Share the open study into a room. ``mode``: "deidentified" or "identified"
        (asked when None, as is the room)."""
        from app.services.study_share import is_deidentified

        if self.sharing is None:
            return None
        paths = [p for h in self.handles for p in h.source_paths()]
        if not paths:
            self.show_message(self.tr("Only studies opened from files can be shared."))
            return None
        if room_id is None:
            room_id = self._choose_room()
            if room_id is None:
                return None
        if mode is None:
            mode = ("deidentified" if is_deidentified(paths) else self._ask_share_mode())
            if mode is None:
                return None
        identified = mode == "identified"
        self.progress.setRange(0, len(paths))
        self.progress.setValue(0)
        self.progress.setFormat(self.tr("Sharing %v / %m"))
        self.progress.show()

        def moved(step: tuple[str, int, int]) -> None:
            if not step[0]:
                self.progress.setValue(step[1])

        self.sharing.progress.connect(moved)

        async def run() -> object:
            try:
                return await self.sharing.share(room_id, paths, deidentify=not identified,
                                                confirm_identified=identified)
            finally:
                self.sharing.progress.disconnect(moved)
                self.progress.hide()

        def done(result: object) -> None:
            text = self.tr("The study was shared in the room.")
            if result.warnings:
                text += "\n" + "\n".join(result.warnings)
            self.show_message(text)

        return self._runner.run_task(run(), owner=self, on_result=done,
                                     on_error=self.show_message)

    def _choose_room(self) -> str | None:
        rooms = [r for r in self.consult_chat.rooms() if r.state == "joined"]
        if not rooms:
            self.show_message(self.tr("Join a consult room first."))
            return None
        labels = [", ".join(self._name_of(m) for m in r.members) or r.room_id for r in rooms]
        label, ok = QInputDialog.getItem(self, self.tr("Share to consult"),
                                         self.tr("Consult room:"), labels, 0, False)
        return rooms[labels.index(label)].room_id if ok else None

    def _ask_share_mode(self) -> str | None:
        box = QMessageBox(self)
        box.setIcon(QMessageBox.Icon.Warning)
        box.setWindowTitle(self.tr("Share to consult"))
        box.setText(self.tr("This study is not de-identified. Rooms are not linked to a "
                            "patient, so a de-identified copy is shared unless you confirm "
                            "that the identified study may go to this room."))
        deid = box.addButton(self.tr("Share de-identified copy"),
                             QMessageBox.ButtonRole.AcceptRole)
        ident = box.addButton(self.tr("Share identified (recorded in the audit trail)"),
                              QMessageBox.ButtonRole.DestructiveRole)
        box.addButton(QMessageBox.StandardButton.Cancel)
        box.setDefaultButton(deid)
        box.exec()
        clicked = box.clickedButton()
        return "deidentified" if clicked is deid else "identified" if clicked is ident else None

    # -- opening shared studies --------------------------------------------------------------

    def open_shared_study(self, shared: SharedStudy) -> object:
        """Download, verify and open a shared study (decrypted in memory)."""
        self.stop_coview()
        total = len(shared.manifest.files)
        self.progress.setRange(0, total)
        self.progress.setValue(0)
        self.progress.setFormat(self.tr("Downloading %v / %m"))
        self.progress.show()

        def moved(step: tuple[str, int, int]) -> None:
            if step[0] == shared.study_id:
                self.progress.setValue(step[1])

        self.sharing.progress.connect(moved)

        async def run() -> None:
            try:
                opened = await self.sharing.fetch(shared)
            finally:
                self.sharing.progress.disconnect(moved)
            await self._show_shared(opened)

        def refused(message: str) -> None:
            self.progress.hide()
            self._set_share_status(message, ok=False)

        self._open_task = self._runner.run_task(run(), owner=self, on_error=refused)
        return self._open_task

    async def _show_shared(self, opened: object) -> None:
        result = OpenResult()
        by_id: dict[str, SeriesHandle] = {}
        for series_id, blobs in opened.series.items():
            part = await self._service.open(blobs)
            if part.series:
                by_id[series_id] = part.series[0]
            result.series.extend(part.series)
            result.failures.extend(part.failures)
        self._stop_prefetch()
        self.shared_open = opened
        self._series_by_id = by_id
        self._opened(result, None)
        self._set_share_status(opened.label, ok=opened.status == "verified")
        self._enable_consult()

    def _set_share_status(self, text: str, *, ok: bool) -> None:
        self.share_status.setText(text)
        self.share_status.setProperty("role", "" if ok else "error")
        self.share_status.style().unpolish(self.share_status)
        self.share_status.style().polish(self.share_status)
        self.share_status.setVisible(bool(text))

    def series_id_of(self, handle: SeriesHandle) -> str:
        return next((k for k, h in self._series_by_id.items() if h is handle), "")

    # -- co-viewing --------------------------------------------------------------------------

    def start_coview(self, role: str) -> object | None:
        """View the open shared study together with its room, as presenter or follower."""
        if self.shared_open is None or self.consult_chat is None:
            return None
        room_id = self.shared_open.shared.room_id
        if self.coview is None or self.coview.room_id != room_id:
            self.stop_coview()
            self.coview = CoviewService(self.consult_chat, room_id, self._device_id)
            pane = self.panes[0]
            self.coview_binding = CoviewBinding(
                self.coview, pane.canvas,
                study_id=lambda: self.shared_open.shared.study_id if self.shared_open else "",
                series_id_of=self.series_id_of, handle_of=self._series_by_id.get,
                show=lambda handle: self.show_in(pane, handle), names=self._name_of,
                parent=self)
            self.coview_binding.statusChanged.connect(self._coview_status)
        binding = self.coview_binding
        service = self.coview

        async def run() -> None:
            await service.start(role, binding.current() if role == PRESENTER else None)
            binding._status()
            if role == FOLLOWER and service.last_remote is not None:
                binding._remote(service.last_remote)
            self._enable_consult()

        return self._runner.run_task(run(), owner=self, on_error=self.show_message)

    def _coview_status(self, text: str) -> None:
        self.coview_status.setText(text)
        self.coview_status.setVisible(bool(text))

    def stop_coview(self) -> None:
        service, binding = self.coview, self.coview_binding
        self.coview = self.coview_binding = None
        if binding is not None:
            binding.disconnect_all()
            binding.deleteLater()
        self._coview_status("")
        if service is not None and service.active:
            self._runner.run_task(service.stop(), owner=self)
        self._enable_consult()

    def leave_shared_study(self) -> None:
        """Another study opens: no shared study (nor co-viewing) any more."""
        if getattr(self, "share_action", None) is None:
            return
        self.stop_coview()
        self.shared_open = None
        self._series_by_id = {}
        self._set_share_status("", ok=True)
        self._enable_consult()

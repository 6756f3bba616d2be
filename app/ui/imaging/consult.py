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
from collections.abc import Callable, Sequence
from functools import partial

from PySide6.QtCore import QObject, QPoint, Qt, Signal
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

from app.core.coview import (
    FOLLOWER,
    PRESENTER,
    CoviewState,
    PanePointer,
    PaneState,
    Region,
    SharedMeasurement,
)
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
    followRequested = Signal(object)  # SharedStudy: open it and follow the room's presenter

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
        self.list.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        self.list.customContextMenuRequested.connect(self._menu)
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

    def remove(self, study_ids: list[str]) -> None:
        """Retention removed these studies: they go from the list."""
        for study_id in study_ids:
            if self._studies.pop(study_id, None) is None:
                continue
            for n in range(self.list.count()):
                if self.list.item(n).data(Qt.ItemDataRole.UserRole) == study_id:
                    self.list.takeItem(n)
                    break

    def selected(self) -> SharedStudy | None:
        item = self.list.currentItem()
        return self._studies.get(item.data(Qt.ItemDataRole.UserRole)) if item else None

    def _menu(self, pos: QPoint) -> None:
        item = self.list.itemAt(pos)
        shared = self._studies.get(item.data(Qt.ItemDataRole.UserRole)) if item else None
        if shared is None:
            return
        menu = QMenu(self)
        menu.addAction(self.tr("Open"), lambda: self.openRequested.emit(shared))
        menu.addAction(self.tr("View together"), lambda: self.followRequested.emit(shared))
        menu.popup(self.list.viewport().mapToGlobal(pos))
        self.context_menu = menu  # tests

    def _activated(self, item: QListWidgetItem) -> None:
        shared = self._studies.get(item.data(Qt.ItemDataRole.UserRole))
        if shared is not None:
            self.openRequested.emit(shared)


def pane_state(canvas: ImageCanvas, series_id: str) -> PaneState:
    s = canvas.state
    window = s.window
    items = canvas.measurements.get(s.index, [])
    seen = canvas.visible_region()
    region = None
    if seen is not None:
        (row, col), (w, h) = seen
        region = Region((round(row, 2), round(col, 2)), (round(w, 2), round(h, 2)))
    return PaneState(
        series=series_id, index=s.index,
        center=window.center if window is not None else None,
        width=window.width if window is not None else None,
        region=region, rotation=s.rotation, flip_h=s.flip_h, flip_v=s.flip_v,
        invert=s.invert,
        measurements=tuple(SharedMeasurement(m.kind, tuple(m.points)) for m in items
                           if m.result is not None)[:32])


class CoviewBinding(QObject):
    """One viewer's side of a co-view session, over both panes of the viewer.

    ``canvases`` are the panes' canvases (the second shows a series beside the first);
    ``pane_count`` says how many are in use (1, or 2 side by side); ``show(n, handle)`` puts
    a series in pane ``n``; ``set_panes(count)`` switches side by side on or off;
    ``open_study(study_id)`` asks the viewer to fetch, verify and open another shared study
    of the room (True when it is being opened: the newest remote view is applied after)."""

    statusChanged = Signal(str)  # who presents, for the view's co-view label

    def __init__(self, service: CoviewService, canvases: Sequence[ImageCanvas], *,
                 study_id: Callable[[], str], series_id_of: Callable[[SeriesHandle], str],
                 handle_of: Callable[[str], SeriesHandle | None],
                 show: Callable[[int, SeriesHandle], None], names: Callable[[str], str],
                 pane_count: Callable[[], int] = lambda: 1,
                 set_panes: Callable[[int], None] = lambda _count: None,
                 open_study: Callable[[str], bool] = lambda _study: False,
                 parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.service = service
        self.canvases = list(canvases)
        self._study_id, self._series_id_of = study_id, series_id_of
        self._handle_of, self._show, self._names = handle_of, show, names
        self._pane_count, self._set_panes, self._open_study = pane_count, set_panes, open_study
        self._pointer: PanePointer | None = None
        self._applying = False
        self.applied = 0
        self._slots: list[tuple[object, object]] = []
        for n, canvas in enumerate(self.canvases):
            for signal, slot in ((canvas.stateChanged, self._local_changed),
                                 (canvas.measurementAdded, self._measured),
                                 (canvas.pointerMoved, partial(self._pointer_moved, n))):
                signal.connect(slot)
                self._slots.append((signal, slot))
        service.remote_view.connect(self._remote)
        service.participants_changed.connect(self._participants)

    @property
    def canvas(self) -> ImageCanvas:
        return self.canvases[0]

    def disconnect_all(self) -> None:
        for signal, slot in self._slots:
            with contextlib.suppress(RuntimeError, TypeError):
                signal.disconnect(slot)
        self._slots = []
        with contextlib.suppress(ValueError, RuntimeError):
            self.service.remote_view.disconnect(self._remote)
            self.service.participants_changed.disconnect(self._participants)
        for canvas in self.canvases:
            canvas.set_remote_pointer(None)

    def _participants(self, _participants: object) -> None:
        self._status()

    # -- local -> room -----------------------------------------------------------------------

    def current(self) -> CoviewState | None:
        panes = []
        for canvas in self.canvases[:max(1, self._pane_count())]:
            handle = canvas.handle
            series_id = self._series_id_of(handle) if handle is not None else ""
            if not series_id:
                break
            panes.append(pane_state(canvas, series_id))
        if not panes:
            return None
        pointer = self._pointer if self._pointer and self._pointer.pane < len(panes) else None
        return CoviewState(self._study_id(), tuple(panes), pointer)

    def local_changed(self) -> None:
        """The local view changed (a pane's state, or side by side on/off)."""
        self._local_changed()

    def _local_changed(self) -> None:
        if self._applying or self.service.role != PRESENTER:
            return
        state = self.current()
        if state is not None:
            self.service.publish(state)

    def _measured(self, _item: object) -> None:
        self._local_changed()

    def _pointer_moved(self, pane: int, point: tuple[float, float] | None) -> None:
        if point is not None:
            self._pointer = PanePointer(pane, (round(point[0], 1), round(point[1], 1)))
        elif self._pointer is not None and self._pointer.pane == pane:
            self._pointer = None
        else:
            return
        self._local_changed()

    # -- room -> local -----------------------------------------------------------------------

    def _remote(self, view: RemoteView) -> None:
        if self.service.role != FOLLOWER:
            return
        state = view.state
        if state.study != self._study_id():
            self._open_study(state.study)  # applied once it is open (the newest view)
            return
        handles = [self._handle_of(p.series) for p in state.panes]
        if any(h is None for h in handles):
            return
        self._applying = True
        try:
            self._set_panes(len(state.panes))
            for n, (pane, handle) in enumerate(zip(state.panes, handles, strict=True)):
                self._apply_pane(n, pane, handle)
            who = self._names(view.user_id)
            for n, canvas in enumerate(self.canvases):
                pointer = state.pointer
                canvas.set_remote_pointer(
                    pointer.at if pointer is not None and pointer.pane == n else None, who)
            self.applied += 1
        finally:
            self._applying = False
        self._status()

    def _apply_pane(self, n: int, pane: PaneState, handle: SeriesHandle | None) -> None:
        canvas = self.canvases[n]
        if handle is not None and canvas.handle is not handle:
            self._show(n, handle)
        window = (WindowLevel(pane.center, pane.width, "custom")
                  if pane.center is not None and pane.width is not None else None)
        region = (pane.region.focus, pane.region.extent) if pane.region is not None else None
        canvas.apply_view(index=pane.index, window=window, region=region,
                          rotation=pane.rotation, flip_h=pane.flip_h, flip_v=pane.flip_v,
                          invert=pane.invert)
        canvas.measurements[canvas.state.index] = []
        for m in pane.measurements:
            canvas.add_measurement(DISTANCE if m.kind == DISTANCE else ANGLE, list(m.points))

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
        self.shared_panel.followRequested.connect(self.follow_study)
        self._opening_study = ""
        self.side_action.toggled.connect(self._coview_layout_changed)
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
        opened = self.shared_open
        reshare = opened is not None and opened.status == "verified"
        self.share_action.setEnabled(live and (bool(paths) or reshare))
        study = opened is not None
        active = self.coview is not None and self.coview.active
        shared = live and bool(self.shared_panel.studies())
        self.present_action.setEnabled(study and not active)
        self.follow_action.setEnabled((study or shared) and not active)
        self.stop_coview_action.setEnabled(active)
        self.coview_button.setEnabled(live and (study or shared or active))

    # -- wiring ------------------------------------------------------------------------------

    def configure_consult(self, *, chat: object, sharing: object, device_id: str) -> None:
        """The session's chat (rooms, names, room events) and study sharing."""
        self.consult_chat = chat
        self.sharing = sharing
        self._device_id = device_id
        for shared in sorted(sharing.studies(), key=lambda s: s.manifest.ts_ms):
            self.shared_panel.add(shared)  # kept in the encrypted cache across sign-ins
        sharing.shared.connect(self._study_shared)
        sharing.removed.connect(self._studies_removed)
        self._enable_consult()

    def _name_of(self, user_id: str) -> str:
        chat = self.consult_chat
        return (chat.username(user_id) if chat is not None else None) or user_id

    def _studies_removed(self, study_ids: list[str]) -> None:
        self.shared_panel.remove(study_ids)
        if self.shared_open is not None and self.shared_open.shared.study_id in study_ids:
            self.leave_shared_study()
            for pane in self.panes:
                pane.show_series(None)
            self.handles = []
        self._enable_consult()

    def _study_shared(self, shared: SharedStudy) -> None:
        self.shared_panel.add(shared)
        self._enable_consult()
        service, binding = self.coview, self.coview_binding
        if (service is not None and binding is not None and service.role == FOLLOWER
                and service.last_remote is not None
                and service.last_remote.state.study == shared.study_id):
            binding._remote(service.last_remote)  # the presenter showed it before it came

    # -- sharing -----------------------------------------------------------------------------

    def share_to_consult(self, room_id: str | None = None,
                         mode: str | None = None) -> object | None:
        """Share the open study into a room. ``mode``: "deidentified", "identified"
        (confirmed) or "as_is" (the patient's own room); when None it is decided by the
        check (de-identified files, or the room linked to the files' patient) or asked."""
        from app.services.study_share import is_deidentified

        if self.sharing is None:
            return None
        paths = [p for h in self.handles for p in h.source_paths()]
        if not paths and self.shared_open is not None:
            return self.reshare_to_consult(room_id, confirmed=mode is not None)
        if not paths:
            self.show_message(self.tr("Only studies opened from files can be shared."))
            return None
        if room_id is None:
            room_id = self._choose_room()
            if room_id is None:
                return None
        if mode is None:
            if is_deidentified(paths):
                mode = "deidentified"
            elif self.sharing.patient_room(room_id, paths):
                mode = "as_is"  # the patient's own consult room
            else:
                mode = self._ask_share_mode()
            if mode is None:
                return None
        identified = mode in ("identified", "as_is")
        moved = self._show_sharing_progress(len(paths))

        async def run() -> object:
            try:
                return await self.sharing.share(room_id, paths, deidentify=not identified,
                                                confirm_identified=mode == "identified")
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

    def reshare_to_consult(self, room_id: str | None = None, *,
                           confirmed: bool = False) -> object | None:
        """Share the open shared study (received and verified) into another of the user's
        rooms: always as a de-identified copy (checked and made in memory), signed by this
        device, audited."""
        opened = self.shared_open
        if self.sharing is None or opened is None:
            return None
        if opened.status != "verified":
            self.show_message(self.tr("Only a verified study can be shared on. Verify the "
                                      "sender's device first."))
            return None
        if room_id is None:
            room_id = self._choose_room(exclude=opened.shared.room_id)
            if room_id is None:
                return None
        if not confirmed:
            box = QMessageBox(self)
            box.setIcon(QMessageBox.Icon.Question)
            box.setWindowTitle(self.tr("Share to consult"))
            box.setText(self.tr("A de-identified copy of this study will be shared into the "
                                "room, signed by this device and recorded in the audit "
                                "trail."))
            box.setStandardButtons(QMessageBox.StandardButton.Ok
                                   | QMessageBox.StandardButton.Cancel)
            if box.exec() != QMessageBox.StandardButton.Ok:
                return None
        moved = self._show_sharing_progress(len(opened.shared.manifest.files))

        async def run() -> object:
            try:
                return await self.sharing.reshare(opened, room_id)
            finally:
                self.sharing.progress.disconnect(moved)
                self.progress.hide()

        def done(result: object) -> None:
            text = self.tr("A de-identified copy of the study was shared in the room.")
            if result.warnings:
                text += "\n" + "\n".join(result.warnings)
            self.show_message(text)

        return self._runner.run_task(run(), owner=self, on_result=done,
                                     on_error=self.show_message)

    def _show_sharing_progress(self, total: int) -> Callable[[tuple[str, int, int]], None]:
        """Show the bar for ``total`` files; returns the slot it follows (the caller
        disconnects it when the share ends)."""
        self.progress.setRange(0, total)
        self.progress.setValue(0)
        self.progress.setFormat(self.tr("Sharing %v / %m"))
        self.progress.show()

        def moved(step: tuple[str, int, int]) -> None:
            if not step[0]:
                self.progress.setValue(step[1])

        self.sharing.progress.connect(moved)
        return moved

    def _choose_room(self, exclude: str = "") -> str | None:
        rooms = [r for r in self.consult_chat.rooms()
                 if r.state == "joined" and r.room_id != exclude]
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
        box.setText(self.tr("This study is not de-identified, and this room is not linked "
                            "to its patient. A de-identified copy is shared unless you "
                            "confirm that the identified study may go to this room."))
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

    def open_shared_study(self, shared: SharedStudy, *, following: bool = False) -> object:
        """Download, verify and open a shared study (decrypted in memory). ``following``:
        opened because the presenter shows it; co-viewing goes on, and the presenter's
        newest view is applied once it is open."""
        coview = self.coview
        if not following and not (coview is not None and coview.active
                                  and coview.room_id == shared.room_id):
            self.stop_coview()  # viewing together goes on with another study of its room
        self._opening_study = shared.study_id
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
            self._opening_study = ""
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
        self._opening_study = ""
        self._enable_consult()
        service, binding = self.coview, self.coview_binding
        if (service is not None and binding is not None and service.role == FOLLOWER
                and service.last_remote is not None):
            binding._remote(service.last_remote)  # the view the presenter shows now

    def _set_share_status(self, text: str, *, ok: bool) -> None:
        self.share_status.setText(text)
        self.share_status.setProperty("role", "" if ok else "error")
        self.share_status.style().unpolish(self.share_status)
        self.share_status.style().polish(self.share_status)
        self.share_status.setVisible(bool(text))

    def series_id_of(self, handle: SeriesHandle) -> str:
        return next((k for k, h in self._series_by_id.items() if h is handle), "")

    # -- co-viewing --------------------------------------------------------------------------

    def start_coview(self, role: str, room_id: str | None = None) -> object | None:
        """View a shared study together with its room, as presenter (of the open shared
        study) or follower. A follower needs no study open: the study the presenter shows
        is fetched, verified and opened first (``room_id``: which room to follow in; by
        default the open study's, the selected shared study's or the only one's)."""
        if self.consult_chat is None or self.sharing is None:
            return None
        if self.shared_open is not None and room_id is None:
            room_id = self.shared_open.shared.room_id
        if role == PRESENTER and (self.shared_open is None
                                  or room_id != self.shared_open.shared.room_id):
            return None
        if room_id is None:
            room_id = self._coview_room()
            if room_id is None:
                return None
        if self.coview is None or self.coview.room_id != room_id:
            self.stop_coview()
            self.coview = CoviewService(self.consult_chat, room_id, self._device_id)
            self.coview_binding = CoviewBinding(
                self.coview, [pane.canvas for pane in self.panes],
                study_id=lambda: self.shared_open.shared.study_id if self.shared_open else "",
                series_id_of=self.series_id_of,
                handle_of=lambda series_id: self._series_by_id.get(series_id),
                show=lambda n, handle: self.show_in(self.panes[n], handle),
                names=self._name_of,
                pane_count=lambda: 2 if self.side_action.isChecked() else 1,
                set_panes=lambda count: self._set_coview_panes(count),
                open_study=self._open_followed_study, parent=self)
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

    def follow_study(self, shared: SharedStudy) -> object | None:
        """"View together" on a shared study: open it (fetched and verified first) and
        follow the room's presenter."""
        if self.shared_open is None or self.shared_open.shared.study_id != shared.study_id:
            self.stop_coview()
            self.open_shared_study(shared, following=True)
        return self.start_coview(FOLLOWER, shared.room_id)

    def _coview_room(self) -> str | None:
        selected = self.shared_panel.selected()
        if selected is not None:
            return selected.room_id
        rooms = list(dict.fromkeys(s.room_id for s in self.shared_panel.studies()))
        if len(rooms) == 1:
            return rooms[0]
        if not rooms:
            return None
        labels = [", ".join(self._name_of(m) for m in self.consult_chat.members(r)) or r
                  for r in rooms]
        label, ok = QInputDialog.getItem(self, self.tr("View together"),
                                         self.tr("Consult room:"), labels, 0, False)
        return rooms[labels.index(label)] if ok else None

    def _open_followed_study(self, study_id: str) -> bool:
        """The presenter shows another study of the room: fetch, verify and open it."""
        if getattr(self, "_opening_study", "") == study_id:
            return True  # on its way
        room_id = self.coview.room_id if self.coview is not None else ""
        shared = next((s for s in self.sharing.studies(room_id) if s.study_id == study_id),
                      None) if self.sharing is not None else None
        if shared is None:
            return False  # its share event has not arrived yet: the next update retries
        self.open_shared_study(shared, following=True)
        return True

    def _set_coview_panes(self, count: int) -> None:
        if self.side_action.isChecked() != (count == 2):
            self.set_side_by_side(count == 2)

    def _coview_layout_changed(self, _on: bool = False) -> None:
        if self.coview_binding is not None:
            self.coview_binding.local_changed()

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

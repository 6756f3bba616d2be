"""Images: open DICOM files or folders, browse studies and series, read them in the viewer.

Opening shows the first decodable image at once (one file read and decoded in a worker),
then loads and groups the whole selection in a worker, replaces the preview with the sorted
series at the same image, and decodes the remaining slices in the background (progress bar).
Two panes can show two series side by side; toolbar actions act on the active pane (blue
frame). Export and print burn the watermark in and are audited; de-identified export writes
PS3.15 Basic Profile copies and warns when pixels may still identify the patient.

Dependencies come through :meth:`ImagesView.configure` (the workspace builds its views
without arguments): the window's TaskRunner, the imaging service (with the audit callable)
and who is viewing on which device. Without it the view still works, with its own runner,
no audit, and the operating system's user and host name in the watermark.
"""

from __future__ import annotations

import asyncio
import getpass
import socket
import threading
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PySide6.QtCore import QCoreApplication, QMarginsF, QPointF, QRectF, Qt
from PySide6.QtGui import (
    QAction,
    QActionGroup,
    QFont,
    QKeySequence,
    QPageLayout,
    QPageSize,
    QPainter,
    QPdfWriter,
)
from PySide6.QtWidgets import (
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QMenu,
    QMessageBox,
    QProgressBar,
    QSplitter,
    QStackedWidget,
    QToolBar,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from app.imaging.errors import ImagingError
from app.services.imaging import (
    DeidSummary,
    ImagingService,
    OpenResult,
    SeriesHandle,
    ViewerIdentity,
)
from app.ui.asyncbridge import TaskRunner
from app.ui.i18n import fill
from app.ui.imaging.browser import SeriesBrowser
from app.ui.imaging.canvas import ANGLE, DISTANCE, NAVIGATE, PRESET_ORDER, ImageCanvas
from app.ui.imaging.consult import ViewerConsultMixin
from app.ui.imaging.pane import ViewerPane
from app.ui.imaging.qimage import ArrayImage
from app.ui.imaging.snapshot import ViewerSnapshotMixin
from app.ui.imaging.tags import TagPanel
from app.ui.views.placeholder import PlaceholderView


def _default_identity() -> ViewerIdentity:
    try:
        user = getpass.getuser()
    except Exception:  # no login name in this environment
        user = "unknown"
    return ViewerIdentity(user, socket.gethostname() or "unknown")


def _qt_writer(pixels: np.ndarray, path: Path, fmt: str) -> None:
    """Writes with Qt's image writers (worker thread: QImage is safe off the GUI thread)."""
    image = ArrayImage(pixels)
    tmp = path.with_name(path.name + ".part")
    if not image.image.save(str(tmp), fmt, 92 if fmt.upper() == "JPEG" else -1):
        tmp.unlink(missing_ok=True)
        raise OSError("the image writer failed")
    tmp.replace(path)


class ImagesView(ViewerSnapshotMixin, ViewerConsultMixin, PlaceholderView):
    def __init__(self, parent: QWidget | None = None) -> None:
        self._built = False
        super().__init__(parent)
        self._service = ImagingService()
        self._runner = TaskRunner(self)
        self._runner.errorReported.connect(self.show_message)
        self.identity = _default_identity()
        self.handles: list[SeriesHandle] = []
        self._open_problems = ""
        self._prefetch_stop = threading.Event()
        self._prefetch_task: asyncio.Future | None = None
        self._open_task: asyncio.Future | None = None
        self._build()
        self._built = True
        self.retranslate()

    # -- wiring ----------------------------------------------------------------------------

    def configure(self, *, runner: TaskRunner | None = None,
                  service: ImagingService | None = None,
                  identity: ViewerIdentity | None = None) -> None:
        if runner is not None:
            self._runner = runner
        if service is not None:
            self._service = service
            for pane in self.panes:
                pane._service = service
        if identity is not None:
            self.identity = identity
            for pane in self.panes:
                pane.set_identity(identity)

    @staticmethod
    def title() -> str:
        return QCoreApplication.translate("ImagesView", "Images")

    def texts(self) -> tuple[str, str, str]:
        translate = QCoreApplication.translate
        return (
            translate("ImagesView", "No images open"),
            translate("ImagesView", "Open DICOM files or a folder to read them here: series "
                      "with thumbnails on the left, the viewer beside them."),
            translate("ImagesView", "Every view carries a watermark with your name, this "
                      "device, the time and the patient ID. Exports and prints carry it too "
                      "and are recorded in the audit trail."),
        )

    # -- layout ----------------------------------------------------------------------------

    def _build(self) -> None:
        outer = self.layout()
        while outer.count():  # the placeholder's labels move to the empty page
            outer.takeAt(0)
        outer.setContentsMargins(0, 0, 0, 0)
        outer.setSpacing(0)

        empty = QWidget()
        empty_column = QVBoxLayout(empty)
        empty_column.setContentsMargins(40, 36, 40, 36)
        empty_column.setSpacing(14)
        for label in (self.heading, self.body, self.hint):
            empty_column.addWidget(label)
        empty_column.addStretch(1)

        self.toolbar = QToolBar()
        self.toolbar.setObjectName("imagingToolbar")
        self.toolbar.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextOnly)
        self._build_actions()

        self.browser = SeriesBrowser()
        self.browser.seriesChosen.connect(self.show_in_active)
        self.browser.seriesOpenBeside.connect(self.show_beside)
        self.panes = [ViewerPane(self._service), ViewerPane(self._service)]
        self.viewers = QSplitter(Qt.Orientation.Horizontal)
        self.viewers.setObjectName("viewerSplit")
        for pane in self.panes:
            pane.set_identity(self.identity)
            pane.activated.connect(self.activate)
            pane.canvas.stateChanged.connect(self._canvas_changed)
            pane.canvas.probeChanged.connect(self._show_probe)
            pane.canvas.failed.connect(self.add_message)
            self.viewers.addWidget(pane)
        self.panes[1].hide()
        self.active = self.panes[0]
        self.active.set_active(True)
        self.tag_panel = TagPanel()
        self.tag_panel.hide()

        self.stage = QStackedWidget()
        self.stage.addWidget(empty)
        self.stage.addWidget(self.viewers)
        self.split = QSplitter(Qt.Orientation.Horizontal)
        self.split.addWidget(self.browser)
        self.split.addWidget(self.stage)
        self.split.addWidget(self.tag_panel)
        self.split.setStretchFactor(1, 1)
        self.split.setSizes([250, 800, 0])
        self.browser.hide()

        self.message = QLabel()
        self.message.setObjectName("imagingMessage")
        self.message.setWordWrap(True)
        self.message.setProperty("role", "warning")
        self.message.hide()
        self.progress = QProgressBar()
        self.progress.setObjectName("imagingProgress")
        self.progress.setMinimumWidth(200)
        self.progress.setMaximumWidth(260)
        self.progress.setTextVisible(True)
        self.progress.hide()
        self.status = QLabel()
        self.status.setObjectName("imagingStatus")
        self.status.setProperty("role", "subtle")
        status_row = QHBoxLayout()
        status_row.setContentsMargins(8, 2, 8, 2)
        status_row.addWidget(self.status, 1)
        status_row.addWidget(self.progress)

        outer.addWidget(self.toolbar)
        outer.addWidget(self.message)
        outer.addWidget(self.split, 1)
        outer.addLayout(status_row)
        self._build_consult()  # Share to consult, Shared studies, View together
        self._build_snapshot()  # Snapshot: to the clipboard or a consult room
        self._enable()

    def _action(self, handler, *, checkable: bool = False,  # type: ignore[no-untyped-def]
                shortcut: str | None = None) -> QAction:
        action = QAction(self)
        action.setCheckable(checkable)
        action.triggered.connect(handler)
        if shortcut:
            action.setShortcut(QKeySequence(shortcut))
            action.setShortcutContext(Qt.ShortcutContext.WidgetWithChildrenShortcut)
            self.addAction(action)
        return action

    def _build_actions(self) -> None:
        bar = self.toolbar
        self.open_files_action = self._action(lambda: self.choose_files(), shortcut="Ctrl+O")
        self.open_folder_action = self._action(lambda: self.choose_folder(),
                                               shortcut="Ctrl+Shift+O")
        bar.addAction(self.open_files_action)
        bar.addAction(self.open_folder_action)
        bar.addSeparator()

        self.preset_menu = QMenu(self)
        self.preset_actions: dict[str, QAction] = {}
        self.preset_group = QActionGroup(self)
        for n, key in enumerate(("", *PRESET_ORDER)):
            action = QAction(self, checkable=True)
            action.triggered.connect(lambda _=False, key=key: self.apply_preset(key))
            action.setShortcut(QKeySequence(str(n)))
            action.setShortcutContext(Qt.ShortcutContext.WidgetWithChildrenShortcut)
            self.addAction(action)
            self.preset_group.addAction(action)
            self.preset_menu.addAction(action)
            self.preset_actions[key] = action
        self.preset_button = QToolButton()
        self.preset_button.setMenu(self.preset_menu)
        self.preset_button.setPopupMode(QToolButton.ToolButtonPopupMode.InstantPopup)
        bar.addWidget(self.preset_button)
        self.invert_action = self._action(self._invert, checkable=True, shortcut="I")
        bar.addAction(self.invert_action)
        bar.addSeparator()

        self.fit_action = self._action(lambda: self.canvas.zoom_fit(), shortcut="F")
        self.actual_action = self._action(lambda: self.canvas.zoom_actual(), shortcut="Ctrl+0")
        self.rotate_action = self._action(lambda: self.canvas.rotate(1), shortcut="R")
        self.flip_h_action = self._action(lambda: self.canvas.flip(True), shortcut="H")
        self.flip_v_action = self._action(lambda: self.canvas.flip(False), shortcut="V")
        for action in (self.fit_action, self.actual_action, self.rotate_action,
                       self.flip_h_action, self.flip_v_action):
            bar.addAction(action)
        bar.addSeparator()

        self.tool_group = QActionGroup(self)
        self.navigate_action = self._action(lambda: self.set_tool(NAVIGATE), checkable=True,
                                            shortcut="Esc")
        self.distance_action = self._action(lambda: self.set_tool(DISTANCE), checkable=True,
                                            shortcut="D")
        self.angle_action = self._action(lambda: self.set_tool(ANGLE), checkable=True,
                                         shortcut="A")
        for action in (self.navigate_action, self.distance_action, self.angle_action):
            self.tool_group.addAction(action)
            bar.addAction(action)
        self.navigate_action.setChecked(True)
        self.clear_action = self._action(lambda: self.canvas.clear_measurements())
        bar.addAction(self.clear_action)
        bar.addSeparator()

        self.cine_action = self._action(self._toggle_cine, checkable=True, shortcut="Space")
        bar.addAction(self.cine_action)
        self.side_action = self._action(self.set_side_by_side, checkable=True)
        bar.addAction(self.side_action)
        self.tags_action = self._action(self.set_tags_visible, checkable=True, shortcut="T")
        bar.addAction(self.tags_action)
        bar.addSeparator()

        self.export_menu = QMenu(self)
        self.export_image_action = self._action(lambda: self.export_image())
        self.print_action = self._action(lambda: self.print_pdf(), shortcut="Ctrl+P")
        self.deid_action = self._action(lambda: self.export_deidentified())
        for action in (self.export_image_action, self.print_action, self.deid_action):
            self.export_menu.addAction(action)
        self.export_button = QToolButton()
        self.export_button.setMenu(self.export_menu)
        self.export_button.setPopupMode(QToolButton.ToolButtonPopupMode.InstantPopup)
        bar.addWidget(self.export_button)
        self._enable()

    def retranslate(self) -> None:
        super().retranslate()
        if not getattr(self, "_built", False):
            return
        self.open_files_action.setText(self.tr("Open files…"))
        self.open_folder_action.setText(self.tr("Open folder…"))
        self.preset_button.setText(self.tr("Window"))
        names = {"": self.tr("From the file"), "brain": self.tr("CT brain"),
                 "lung": self.tr("CT lung"), "bone": self.tr("CT bone"),
                 "abdomen": self.tr("CT abdomen"), "mediastinum": self.tr("CT mediastinum")}
        for key, action in self.preset_actions.items():
            action.setText(names[key])
        self.invert_action.setText(self.tr("Invert"))
        self.fit_action.setText(self.tr("Fit"))
        self.actual_action.setText(self.tr("1:1"))
        self.rotate_action.setText(self.tr("Rotate"))
        self.flip_h_action.setText(self.tr("Flip H"))
        self.flip_v_action.setText(self.tr("Flip V"))
        self.navigate_action.setText(self.tr("Pan"))
        self.distance_action.setText(self.tr("Distance"))
        self.angle_action.setText(self.tr("Angle"))
        self.clear_action.setText(self.tr("Clear"))
        self.cine_action.setText(self.tr("Cine"))
        self.side_action.setText(self.tr("Side by side"))
        self.tags_action.setText(self.tr("Tags"))
        self.export_button.setText(self.tr("Export"))
        self.export_image_action.setText(self.tr("Export image…"))
        self.print_action.setText(self.tr("Print to PDF…"))
        self.deid_action.setText(self.tr("Export de-identified…"))
        self.tag_panel.retranslate()
        self.toolbar.setAccessibleName(self.tr("Image tools"))
        self._retranslate_consult()
        self._retranslate_snapshot()

    # -- state helpers ---------------------------------------------------------------------

    @property
    def canvas(self) -> ImageCanvas:
        return self.active.canvas

    def _enable(self) -> None:
        active = getattr(self, "active", None)
        handle = active.handle if active is not None else None
        # A waveform series has no frames (len 0) but prints, exports and de-identifies.
        shown = handle is not None and (handle.is_waveform or len(handle) > 0)
        image = shown and not handle.is_waveform
        for action in (self.invert_action, self.fit_action, self.actual_action,
                       self.rotate_action, self.flip_h_action, self.flip_v_action,
                       self.navigate_action, self.distance_action, self.angle_action,
                       self.clear_action, self.cine_action, self.export_image_action):
            action.setEnabled(image)
        self.preset_button.setEnabled(image)
        self.print_action.setEnabled(shown)
        self.deid_action.setEnabled(shown)
        self.export_button.setEnabled(shown)
        if hasattr(self, "share_action"):
            self._enable_consult()
        self._enable_snapshot()

    def show_message(self, text: str) -> None:
        self.message.setText(text)
        self.message.setVisible(bool(text))

    def add_message(self, text: str) -> None:
        """Adds a line to the message bar (unless it is already there)."""
        lines = [line for line in self.message.text().split("\n") if line]
        if text and text not in lines:
            self.show_message("\n".join([*lines, text]))

    def _show_probe(self, text: str) -> None:
        self.status.setText(text)

    def activate(self, pane: ViewerPane) -> None:
        if pane is self.active:
            return
        self.active.set_active(False)
        self.active = pane
        pane.set_active(True)
        self.browser.select(pane.handle)
        self._sync_controls()
        self._update_tags()

    def _sync_controls(self) -> None:
        canvas = self.canvas
        self.invert_action.setChecked(canvas.state.invert)
        self.cine_action.setChecked(canvas.playing())
        tool_action = {NAVIGATE: self.navigate_action, DISTANCE: self.distance_action,
                       ANGLE: self.angle_action}[canvas.tool]
        tool_action.setChecked(True)
        window = canvas.state.window
        key = window.name if window is not None and window.name in self.preset_actions else ""
        checked = self.preset_group.checkedAction()
        if window is None or key:
            self.preset_actions[key].setChecked(True)
        elif checked is not None:
            checked.setChecked(False)
        self._enable()

    def _canvas_changed(self) -> None:
        canvas = self.canvas
        if self.sender() is not canvas:
            return
        # Called on every slice and window change: touch the toolbar only when what it
        # shows changed (it costs more than the repaint otherwise).
        wl = canvas.state.window
        key = (canvas.state.invert, canvas.tool, canvas.playing(), wl.name if wl else None,
               id(self.active.handle))
        if key != getattr(self, "_controls_key", None):
            self._controls_key = key
            self._sync_controls()
        self._update_tags()

    # -- opening ---------------------------------------------------------------------------

    def choose_files(self) -> None:
        names, _ = QFileDialog.getOpenFileNames(
            self, self.tr("Open DICOM files"), "",
            self.tr("DICOM files (*.dcm *.DCM *.dicom *.ima *.IMA);;All files (*)"))
        if names:
            self.open_paths([Path(n) for n in names])

    def choose_folder(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, self.tr("Open a folder of DICOM files"))
        if folder:
            self.open_paths([Path(folder)])

    def open_paths(self, sources: Sequence[Path | str | bytes]) -> asyncio.Future:
        """Open files, folders or in-memory objects: first image at once, then the rest."""
        self.leave_shared_study()
        self._stop_prefetch()
        if self._open_task is not None:
            self._open_task.cancel()
        self._open_problems = ""
        self.show_message("")
        self.progress.setRange(0, 0)
        self.progress.setFormat(self.tr("Opening…"))
        self.progress.show()
        self._open_task = self._runner.run_task(self._open(list(sources)), owner=self,
                                                on_error=self._open_failed)
        return self._open_task

    async def _open(self, sources: list[Path | str | bytes]) -> None:
        first = await self._service.first_look(sources)
        if first is not None and not first.is_waveform:
            self.stage.setCurrentWidget(self.viewers)
            self.panes[0].show_series(first, 0)
            self._service.viewed(first)  # audited once per opening (image.open)
            self.activate(self.panes[0])
            self._sync_controls()
        result = await self._service.open(sources)
        self._opened(result, first)

    def _open_failed(self, message: str) -> None:
        self.progress.hide()
        self.show_message(message)

    def _opened(self, result: OpenResult, first: SeriesHandle | None) -> None:
        self.handles = result.series
        self.progress.hide()
        problems = ""
        if result.failures:
            reason = result.failures[0][1]
            problems = fill(self.tr("%1 file(s) could not be opened: %2"),
                            str(len(result.failures)), QCoreApplication.translate(
                                "SafeConsultError", reason))
        if not self.handles:
            self.stage.setCurrentIndex(0 if first is None else 1)
            self.show_message(problems or self.tr("No DICOM images were found there."))
            return
        self._open_problems = problems
        self.show_message(problems)
        self.browser.set_series(self.handles)
        self.browser.show()
        self.stage.setCurrentWidget(self.viewers)
        # The sorted series replaces the first image shown, at that same image.
        target, index = self.handles[0], 0
        if first is not None and not first.is_waveform and len(first):
            uid = first.sop_uid(0)
            for handle in self.handles:
                found = handle.index_of_sop(uid)
                if found is not None:
                    target, index = handle, found
                    self._service.continues(first, target)  # one opening: audited once
                    break
        self.panes[0].show_series(target if not target.is_waveform else None, index,
                                  keep_view=first is not None)
        if not target.is_waveform:
            self._service.viewed(target)
        if target.is_waveform:
            self.show_in(self.panes[0], target)
        else:
            self.browser.select(target)
            self._start_prefetch(target, index)
        self.activate(self.panes[0])
        self._sync_controls()
        self._update_tags()
        self._runner.run_task(self._thumbnails(list(self.handles)), owner=self)

    async def _thumbnails(self, handles: list[SeriesHandle]) -> None:
        for handle in handles:
            pixels = await self._service.thumbnail(handle)
            card = self.browser.card_for(handle)
            if card is not None:
                card.set_thumbnail(pixels)

    def _start_prefetch(self, handle: SeriesHandle, start: int) -> None:
        self._stop_prefetch()
        if len(handle) <= 1:
            return
        stop = threading.Event()
        self._prefetch_stop = stop
        loop = asyncio.get_running_loop()
        total = len(handle)
        self.progress.setRange(0, total)
        self.progress.setValue(0)
        self.progress.setFormat(self.tr("Loading images %v / %m"))
        self.progress.show()
        step = max(1, total // 50)

        def progress(done: int, count: int) -> None:
            if (done % step == 0 or done == count) and not stop.is_set():
                try:
                    loop.call_soon_threadsafe(self._progress, stop, done)
                except RuntimeError:  # the loop closed meanwhile
                    stop.set()

        async def run() -> None:
            try:
                failed = await self._service.prefetch(handle, progress, stop, start)
            finally:
                stop.set()  # cancelled (view closed, new series): the worker stops too
            if self._prefetch_stop is stop:
                self.progress.hide()
                if failed:
                    self.add_message(fill(self.tr("%1 image(s) of this series could not be "
                                                   "decoded."), str(failed)))

        self.destroyed.connect(stop.set)
        self._prefetch_task = self._runner.run_task(run(), owner=self)

    def _progress(self, stop: threading.Event, done: int) -> None:
        if not stop.is_set():
            self.progress.setValue(done)

    def _stop_prefetch(self) -> None:
        self._prefetch_stop.set()
        if self._prefetch_task is not None:
            self._prefetch_task.cancel()
            self._prefetch_task = None

    def prefetch_done(self) -> bool:
        return self._prefetch_task is None or self._prefetch_task.done()

    # -- series in panes -------------------------------------------------------------------

    def show_in_active(self, handle: SeriesHandle) -> None:
        self.show_in(self.active, handle)

    def show_beside(self, handle: SeriesHandle) -> None:
        self.set_side_by_side(True)
        other = self.panes[1] if self.active is self.panes[0] else self.panes[0]
        self.show_in(other, handle)
        self.activate(other)

    def show_in(self, pane: ViewerPane, handle: SeriesHandle) -> None:
        # Messages about the series shown before go; those about the opening stay.
        self.show_message(self._open_problems)
        if handle.is_waveform:
            pane.show_series(handle, waveform=[])

            async def load() -> None:
                groups = await self._service.waveforms(handle)
                if pane.handle is handle:
                    pane.show_series(handle, waveform=groups)

            self._runner.run_task(load(), owner=pane, on_error=self.show_message)
        else:
            pane.show_series(handle, 0)
            if pane is self.panes[0] or self.panes[0].handle is not handle:
                self._start_prefetch(handle, 0)
        if pane is self.active:
            self.browser.select(handle)
        self._service.viewed(handle)  # audited once per opened series (image.open)
        self._sync_controls()
        self._update_tags()

    def set_side_by_side(self, on: bool) -> None:
        self.side_action.setChecked(on)
        second = self.panes[1]
        second.setVisible(on)
        if on:
            if second.handle is None and self.handles:
                current = self.panes[0].handle
                others = [h for h in self.handles if h is not current]
                self.show_in(second, others[0] if others else self.handles[0])
            self.viewers.setSizes([1, 1])
        elif self.active is second:
            self.activate(self.panes[0])

    def set_tags_visible(self, on: bool) -> None:
        self.tags_action.setChecked(on)
        self.tag_panel.setVisible(on)
        if on:
            sizes = self.split.sizes()
            self.split.setSizes([sizes[0], max(200, sizes[1] - 360), 360])
        self._update_tags()

    def _update_tags(self) -> None:
        if not self.tag_panel.isVisible():
            return
        handle = self.active.handle
        if handle is None:
            self.tag_panel.set_rows([])
            return
        index = self.canvas.state.index if not handle.is_waveform else 0
        key = (id(handle), index)
        if getattr(self, "_tags_key", None) == key:
            return
        self._tags_key = key
        self.tag_panel.set_rows(handle.tags(index))
        self._service.header_shown(handle)  # audited once per opened series (patient.open)

    # -- viewing controls ------------------------------------------------------------------

    def apply_preset(self, key: str) -> None:
        self.canvas.apply_preset(key)

    def _invert(self, on: bool) -> None:
        self.canvas.set_invert(on)

    def set_tool(self, tool: str) -> None:
        self.canvas.set_tool(tool)

    def _toggle_cine(self, on: bool) -> None:
        if on:
            self.canvas.play()
        else:
            self.canvas.stop()
        self.cine_action.setChecked(self.canvas.playing())

    # -- export, print, de-identify --------------------------------------------------------

    def export_image(self, path: Path | None = None) -> asyncio.Future | None:
        handle = self.active.handle
        pixels = self.canvas.oriented_array()
        if handle is None or pixels is None:
            return None
        fmt = "PNG"
        if path is None:
            name, _chosen = QFileDialog.getSaveFileName(
                self, self.tr("Export image with watermark"), "image-export.png",
                self.tr("PNG image (*.png);;JPEG image (*.jpg *.jpeg)"))
            if not name:
                return None
            path = Path(name)
        if path.suffix.lower() in (".jpg", ".jpeg"):
            fmt = "JPEG"
        elif path.suffix.lower() != ".png":
            path = path.with_suffix(".png")
        fields = self._service.watermark(self.identity, handle)
        return self._runner.run_task(
            self._service.export_image(pixels, path, fmt, fields, handle.object_id, _qt_writer),
            owner=self, on_result=lambda p: self.show_message(
                fill(self.tr("Exported with watermark to %1"), p.name)),
            on_error=self.show_message)

    def print_pdf(self, path: Path | None = None) -> asyncio.Future | None:
        pane = self.active
        handle = pane.handle
        if handle is None:
            return None
        pixels = self._grab_pixels(pane.ecg) if handle.is_waveform else self.canvas.oriented_array()
        if pixels is None:
            return None
        if path is None:
            name, _ = QFileDialog.getSaveFileName(self, self.tr("Print to PDF"),
                                                  "image-print.pdf", self.tr("PDF (*.pdf)"))
            if not name:
                return None
            path = Path(name)
        if path.suffix.lower() != ".pdf":
            path = path.with_suffix(".pdf")
        fields = self._service.watermark(self.identity, handle)

        async def run() -> Path:
            marked = await self._service.watermarked(pixels, fields)
            self._write_pdf(marked, path)
            self._service.record_print(handle.object_id)
            return path

        return self._runner.run_task(
            run(), owner=self,
            on_result=lambda p: self.show_message(fill(self.tr("Printed to %1"), p.name)),
            on_error=self.show_message)

    @staticmethod
    def _grab_pixels(widget: QWidget) -> np.ndarray:
        from app.ui.imaging.qimage import to_array

        return to_array(widget.grab().toImage())

    def _write_pdf(self, pixels: np.ndarray, path: Path) -> None:
        writer = QPdfWriter(str(path))
        writer.setResolution(300)
        landscape = pixels.shape[1] > pixels.shape[0]
        writer.setPageLayout(QPageLayout(
            QPageSize(QPageSize.PageSizeId.A4),
            QPageLayout.Orientation.Landscape if landscape else QPageLayout.Orientation.Portrait,
            QMarginsF(12, 12, 12, 12), QPageLayout.Unit.Millimeter))
        writer.setTitle("SafeConsult image")
        writer.setCreator("SafeConsult")
        painter = QPainter(writer)
        if not painter.isActive():
            raise OSError("the PDF could not be written")
        image = ArrayImage(pixels)
        area = QRectF(painter.viewport())
        scale = min(area.width() / image.width, area.height() / image.height)
        target = QRectF(0, 0, image.width * scale, image.height * scale)
        target.moveCenter(area.center())
        painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform)
        painter.drawImage(target, image.image)
        font = QFont()
        font.setPointSize(8)
        painter.setFont(font)
        painter.drawText(QPointF(area.left(), area.bottom()), "SafeConsult")
        painter.end()

    def export_deidentified(self, out_dir: Path | None = None) -> asyncio.Future | None:
        handle = self.active.handle
        if handle is None:
            return None
        if not handle.source_paths():
            self.show_message(self.tr("Only images opened from files can be exported "
                                      "de-identified."))
            return None
        if out_dir is None:
            name = QFileDialog.getExistingDirectory(
                self, self.tr("Choose an empty folder for the de-identified copy"))
            if not name:
                return None
            out_dir = Path(name)
        return self._runner.run_task(self._service.export_deidentified(handle, out_dir),
                                     owner=self, on_result=self._deidentified,
                                     on_error=self.show_message)

    def _deidentified(self, summary: DeidSummary) -> QMessageBox | None:
        text = fill(self.tr("%1 file(s) de-identified (DICOM PS3.15 Basic Profile) into %2."),
                    str(summary.written), str(summary.out_dir))
        if summary.failed:
            text += " " + fill(self.tr("%1 file(s) failed and were not written."),
                               str(summary.failed))
        self.show_message(text)
        if not summary.warnings:
            return None
        box = QMessageBox(QMessageBox.Icon.Warning, self.tr("Check the pixels before sharing"),
                          self.tr("The header is de-identified, but the pixels may still "
                                  "identify the patient:"), QMessageBox.StandardButton.Ok, self)
        box.setObjectName("burnedInWarning")
        box.setInformativeText("\n".join(f"• {w}" for w in summary.warnings))
        box.setModal(True)
        box.open()
        self.warning_box = box
        return box

    # -- misc ------------------------------------------------------------------------------

    def closeEvent(self, event) -> None:  # type: ignore[no-untyped-def]
        self._stop_prefetch()
        self.stop_coview()
        super().closeEvent(event)


__all__ = ["ImagesView", "ImagingError"]

"""Imaging use cases for the viewer (Qt-free): open files, folders or bytes; the series
found; frames, windows, probes, measurements and tags of one series; thumbnails; the
watermark's fields; export with the watermark burned in; de-identified export.

Blocking work (parsing, decoding, encoding, writing) runs in worker threads through the
``async`` methods (``asyncio.to_thread``); the GUI awaits them through its TaskRunner. The
synchronous methods of :class:`SeriesHandle` are cheap once a frame is decoded (a LUT build
and a gather) and may run on the GUI thread: that is what keeps slice and window changes
within one display frame. Audit calls (``audit(action, object_id)``) happen on the calling
(event-loop) thread after the action succeeded, once per action.
"""

from __future__ import annotations

import asyncio
import hashlib
import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from app.core.imaging_types import Measurement, SeriesInfo, WindowLevel
from app.core.phi import Phi
from app.imaging.deidentify import deidentify_paths
from app.imaging.errors import ImagingError, NoWaveform
from app.imaging.load import Instance, Series, expand_sources, group_series, load, read_dataset
from app.imaging.measure import angle as _angle
from app.imaging.measure import distance as _distance
from app.imaging.measure import pixel_spacing
from app.imaging.render import Frame, Probe
from app.imaging.stack import SliceStack
from app.imaging.watermark import burn_in, encode_png, upscale_for_legibility
from app.imaging.waveform import MultiplexGroup, read_waveforms

Source = str | Path | bytes
Audit = Callable[..., None]
"""``audit(action, object_id)``, or ``audit(action, object_id, detail)`` for a snapshot (a
small dict of codes: where it went): the composition root adapts AuditService.record to it."""
ImageWriter = Callable[[np.ndarray, Path, str], None]
"""Writes uint8 pixels to ``path`` as ``fmt`` ("PNG" or "JPEG"); runs in a worker thread."""

EXPORT_ACTION = "image.export"
PRINT_ACTION = "file.print"
SNAPSHOT_ACTION = "snapshot"  # what a pane shows, watermarked, to the clipboard or a room
SNAPSHOT_TARGETS = ("clipboard", "room")
VIEW_ACTION = "image.open"  # a series shown in a viewer pane: once per opened series
PATIENT_DATA_ACTION = "patient.open"  # its DICOM header (patient identity) shown: once too


def _no_audit(_action: str, _object_id: str, _detail: dict | None = None) -> None:
    return None


@dataclass(frozen=True, slots=True)
class ViewerIdentity:
    """Who is looking, on which device: the first fields of every watermark."""

    user: str
    device: str


@dataclass(frozen=True, slots=True)
class WatermarkFields:
    user: str
    device: str
    when: datetime
    patient_id: Phi[str]

    def time_text(self) -> str:
        return self.when.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")

    def burned_lines(self, verb: str = "Exported") -> list[str]:
        """The lines burned into exported (or, with ``verb="Printed"``, printed) pixels;
        ASCII labels: the files outlive the UI language, and the embedded font is ASCII."""
        pid = self.patient_id.reveal() or "(none)"
        return [f"{self.user} @ {self.device}", f"{verb} {self.time_text()}",
                f"Patient ID {pid}"]


def watermark_fields(identity: ViewerIdentity, patient_id: Phi[str],
                     when: datetime | None = None) -> WatermarkFields:
    return WatermarkFields(identity.user, identity.device, when or datetime.now(UTC),
                           patient_id)


@dataclass(frozen=True, slots=True)
class TagRow:
    """One element for the tag panel. ``value`` may be PHI: the panel is PHI-tagged."""

    depth: int
    tag: str  # "(0010,0010)"
    keyword: str
    vr: str
    value: str


_BINARY_VRS = {"OB", "OW", "OF", "OD", "OL", "OV", "UN"}
_MAX_VALUE = 160


def _tag_rows(ds: object, depth: int, out: list[TagRow]) -> None:
    for elem in ds:  # type: ignore[attr-defined]
        tag = f"({elem.tag.group:04X},{elem.tag.element:04X})"
        vr = str(elem.VR)
        keyword = elem.keyword or ("private" if elem.tag.is_private else "")
        try:
            if vr == "SQ":
                items = list(elem.value or [])
                out.append(TagRow(depth, tag, keyword, vr, f"{len(items)} item(s)"))
                for item in items:
                    _tag_rows(item, depth + 1, out)
                continue
            if vr in _BINARY_VRS or isinstance(elem.value, bytes | bytearray):
                size = len(elem.value) if elem.value is not None else 0
                value = f"({size} bytes)"
            else:
                value = "" if elem.value is None else str(elem.value)
        except Exception:  # a malformed value: shown as such, never a crash
            value = "(unreadable)"
        if len(value) > _MAX_VALUE:
            value = value[: _MAX_VALUE - 1] + "…"
        out.append(TagRow(depth, tag, keyword, vr, value))


def _text(ds: object, keyword: str) -> str:
    try:
        value = ds.get(keyword, "")  # type: ignore[attr-defined]
        return "" if value is None else str(value)
    except Exception:  # malformed value
        return ""


class SeriesHandle:
    """One series as the viewer uses it: a :class:`SliceStack` made safe to share between
    the GUI thread and one prefetching worker (a lock around the frame cache)."""

    def __init__(self, series: Series) -> None:
        self.series = series
        self.stack = SliceStack(series)
        self._lock = threading.Lock()
        first = series.instances[0].dataset
        self.is_waveform = "WaveformSequence" in first and "PixelData" not in first
        # Actions already audited for this opening of the series (see ImagingService.viewed)
        self.audited: set[str] = set()

    # -- identity
    @property
    def info(self) -> SeriesInfo:
        return self.series.info

    @property
    def sorted_by(self) -> str:
        return self.series.sorted_by

    @property
    def object_id(self) -> str:
        """The series' identifier for the audit trail: a digest of its UID (the UID itself
        could be looked up in a PACS; the digest can be checked by whoever holds the study)."""
        key = self.info.series_uid or self.info.study.study_uid or str(id(self))
        return "series-sha256:" + hashlib.sha256(key.encode()).hexdigest()[:32]

    @property
    def patient_id(self) -> Phi[str]:
        return self.info.study.patient.patient_id

    def __len__(self) -> int:
        return 0 if self.is_waveform else len(self.stack)

    def source_paths(self) -> list[Path]:
        paths = []
        for inst in self.series.instances:
            path = Path(inst.label.reveal())
            if path.is_file():
                paths.append(path)
        return paths

    def sop_uid(self, index: int) -> str:
        return _text(self.frame(index).ds, "SOPInstanceUID")

    def index_of_sop(self, uid: str) -> int | None:
        for n, inst in enumerate(self.series.instances):
            if uid and _text(inst.dataset, "SOPInstanceUID") == uid:
                return n
        return None

    # -- frames
    def frame(self, index: int) -> Frame:
        with self._lock:
            return self.stack.frame(index)

    def render(self, index: int, window: WindowLevel | None = None) -> np.ndarray:
        return self.frame(index).render(window)

    def default_window(self, index: int) -> WindowLevel | None:
        return self.frame(index).default_window()

    def probe(self, index: int, row: int, col: int) -> Probe | None:
        try:
            return self.frame(index).probe(row, col)
        except IndexError:
            return None

    def spacing_known(self, index: int) -> bool:
        frame = self.frame(index)
        return not pixel_spacing(frame.ds, frame.index).note.startswith("no pixel spacing")

    def distance(self, index: int, a: tuple[float, float], b: tuple[float, float]
                 ) -> Measurement:
        frame = self.frame(index)
        return _distance(frame.ds, a, b, frame.index)

    def angle(self, index: int, a: tuple[float, float], vertex: tuple[float, float],
              b: tuple[float, float]) -> Measurement:
        frame = self.frame(index)
        return _angle(frame.ds, a, vertex, b, frame.index)

    def tags(self, index: int) -> list[TagRow]:
        ds = self.series.instances[self._instance_of(index)].dataset
        rows: list[TagRow] = []
        _tag_rows(ds, 0, rows)
        return rows

    def _instance_of(self, index: int) -> int:
        if self.is_waveform:
            return 0
        target = self.stack._slots[index][0]
        for n, inst in enumerate(self.series.instances):
            if inst is target:
                return n
        return 0

    def waveforms(self) -> list[MultiplexGroup]:
        return read_waveforms(self.series.instances[0].dataset)

    def prefetch(self, progress: Callable[[int, int], None] | None = None,
                 cancelled: threading.Event | None = None, start: int = 0) -> int:
        """Decode every frame (from ``start`` outwards), calling ``progress(done, total)``.
        Runs in a worker thread; returns the number of frames that failed to decode."""
        total = len(self)
        order = sorted(range(total), key=lambda i: abs(i - start))
        failed = 0
        for done, index in enumerate(order, start=1):
            if cancelled is not None and cancelled.is_set():
                break
            try:
                self.frame(index)
            except ImagingError:
                failed += 1
            if progress is not None:
                progress(done, total)
        return failed

    def thumbnail(self, size: int = 96) -> np.ndarray | None:
        """A small uint8 image of the middle frame (None for waveforms or undecodable)."""
        if self.is_waveform or len(self) == 0:
            return None
        try:
            image = self.render(len(self) // 2)
        except ImagingError:
            return None
        step = max(1, -(-max(image.shape[:2]) // size))
        return np.ascontiguousarray(image[::step, ::step])


@dataclass(frozen=True, slots=True)
class Snapshot:
    """What a pane showed, with the watermark burned in: ``pixels`` (uint8 RGB) and the
    same as ``png`` bytes. In memory only: it goes to the clipboard or, encrypted, to a
    room; it is never written to disk as it is."""

    pixels: np.ndarray = field(repr=False)
    png: bytes = field(repr=False)
    object_id: str
    when: datetime

    def file_name(self) -> str:
        """The attachment's name: no patient data, only when it was taken."""
        return "snapshot-" + self.when.astimezone(UTC).strftime("%Y%m%d-%H%M%S") + ".png"


@dataclass(slots=True)
class OpenResult:
    series: list[SeriesHandle] = field(default_factory=list)
    failures: list[tuple[Phi[str], str]] = field(default_factory=list)  # label, user message


@dataclass(slots=True)
class DeidSummary:
    written: int
    failed: int
    warnings: list[str]  # PHI-free, de-duplicated
    out_dir: Path


def _first_look(sources: Sequence[Source], attempts: int = 8) -> SeriesHandle | None:
    """The first decodable image among ``sources``, as a one-frame series, decoded: what
    the viewer shows while the rest loads. Tries at most ``attempts`` files."""
    for n, (label, source) in enumerate(expand_sources(sources)):
        if n >= attempts:
            break
        try:
            ds = read_dataset(source)
            handle = SeriesHandle(group_series([Instance(ds, label)])[0])
            if not handle.is_waveform:
                handle.frame(0)
            return handle
        except ImagingError:
            continue
    return None


def _open(sources: Sequence[Source]) -> OpenResult:
    result = load(sources)
    out = OpenResult()
    for series in result.series:
        out.series.append(SeriesHandle(series))
    for label, exc in result.failures:
        out.failures.append((label, exc.user_message))
    return out


class ImagingService:
    def __init__(self, *, audit: Audit | None = None,
                 clock: Callable[[], datetime] | None = None) -> None:
        self.audit: Audit = audit or _no_audit
        self._clock = clock or (lambda: datetime.now(UTC))

    def now(self) -> datetime:
        return self._clock()

    # -- opening
    async def first_look(self, sources: Sequence[Source]) -> SeriesHandle | None:
        return await asyncio.to_thread(_first_look, list(sources))

    async def open(self, sources: Sequence[Source]) -> OpenResult:
        return await asyncio.to_thread(_open, list(sources))

    async def thumbnail(self, handle: SeriesHandle, size: int = 96) -> np.ndarray | None:
        return await asyncio.to_thread(handle.thumbnail, size)

    async def prefetch(self, handle: SeriesHandle, progress: Callable[[int, int], None],
                       cancelled: threading.Event, start: int = 0) -> int:
        return await asyncio.to_thread(handle.prefetch, progress, cancelled, start)

    async def waveforms(self, handle: SeriesHandle) -> list[MultiplexGroup]:
        try:
            return await asyncio.to_thread(handle.waveforms)
        except ImagingError:
            raise
        except Exception as exc:
            raise NoWaveform(f"waveform unreadable ({type(exc).__name__})") from None

    # -- watermark and export
    def watermark(self, identity: ViewerIdentity, handle: SeriesHandle | None) -> WatermarkFields:
        pid = handle.patient_id if handle is not None else Phi("")
        return watermark_fields(identity, pid, self.now())

    async def export_image(self, pixels: np.ndarray, path: Path, fmt: str,
                           fields: WatermarkFields, object_id: str,
                           writer: ImageWriter | None = None) -> Path:
        """Burn the watermark into ``pixels`` and write them; then audit once."""

        def work() -> None:
            marked = burn_in(upscale_for_legibility(pixels), fields.burned_lines())
            if writer is not None:
                writer(marked, path, fmt)
            else:
                if fmt.upper() != "PNG":
                    raise ValueError("without a writer only PNG can be written")
                tmp = path.with_name(path.name + ".part")
                tmp.write_bytes(encode_png(marked))
                tmp.replace(path)

        await asyncio.to_thread(work)
        self.audit(EXPORT_ACTION, object_id)
        return path

    async def watermarked(self, pixels: np.ndarray, fields: WatermarkFields) -> np.ndarray:
        """``pixels`` (enlarged if small) with the watermark burned in, for printing."""
        return await asyncio.to_thread(
            lambda: burn_in(upscale_for_legibility(pixels), fields.burned_lines("Printed")))

    async def snapshot(self, pixels: np.ndarray, fields: WatermarkFields,
                       object_id: str) -> Snapshot:
        """``pixels`` (what the pane shows: slice, window, zoom, measurements, as grabbed
        from the screen) with the watermark burned in -- the same burn-in as export and
        print, verb "Snapshot" -- and encoded as PNG. Not audited yet: the entry is made
        once the snapshot reached its target (:meth:`record_snapshot`)."""

        def work() -> Snapshot:
            marked = burn_in(upscale_for_legibility(pixels), fields.burned_lines("Snapshot"))
            return Snapshot(marked, encode_png(marked), object_id, fields.when)

        return await asyncio.to_thread(work)

    def record_snapshot(self, snapshot: Snapshot, target: str, room_id: str = "") -> None:
        """The snapshot reached ``target`` ("clipboard" or "room" ``room_id``): one
        ``snapshot`` entry, object = the series, detail = where it went (codes only)."""
        if target not in SNAPSHOT_TARGETS or (target == "room") != bool(room_id):
            raise ValueError("a snapshot goes to the clipboard or to one room")
        detail: dict[str, str] = {"to": target}
        if room_id:
            detail["room_id"] = room_id
        self.audit(SNAPSHOT_ACTION, snapshot.object_id, detail)

    def record_print(self, object_id: str) -> None:
        self.audit(PRINT_ACTION, object_id)

    # -- access (issue #8: "view an image", "open patient data")
    def viewed(self, handle: SeriesHandle) -> None:
        """The viewer shows ``handle``'s images: audited once per opening of the series
        (scrolling, re-showing it in another pane or going back to it adds nothing; opening
        the files again gives a new handle, hence a new entry)."""
        self._once(handle, VIEW_ACTION)

    def header_shown(self, handle: SeriesHandle) -> None:
        """The tag panel shows ``handle``'s DICOM header -- the patient's name, ID, birth
        date...: the viewer's "open patient data", audited once per opening likewise."""
        self._once(handle, PATIENT_DATA_ACTION)

    def continues(self, first: SeriesHandle, handle: SeriesHandle) -> None:
        """``handle`` (the sorted series) replaces ``first`` (the first image, shown while
        the rest loaded) in the same opening: what was audited for one counts for both."""
        handle.audited.update(first.audited)

    def _once(self, handle: SeriesHandle, action: str) -> None:
        if action not in handle.audited:
            self.audit(action, handle.object_id)  # raises: not marked, tried again next time
            handle.audited.add(action)

    async def export_deidentified(self, handle: SeriesHandle, out_dir: Path) -> DeidSummary:
        paths = handle.source_paths()

        def work() -> DeidSummary:
            report = deidentify_paths(paths, out_dir)
            warnings = sorted({w for f in report.files for w in f.warnings})
            return DeidSummary(report.written, report.failed, warnings, Path(out_dir))

        summary = await asyncio.to_thread(work)
        if summary.written:
            self.audit(EXPORT_ACTION, handle.object_id)
        return summary


def sources_of(paths: Iterable[str | Path]) -> list[Source]:
    return [Path(p) for p in paths]

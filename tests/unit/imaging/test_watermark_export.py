"""The Qt-free imaging service behind the viewer: watermark fields, watermarked export with
one audit call, first look, open, prefetch, tags, de-identified export."""

from __future__ import annotations

import asyncio
import threading
from datetime import UTC, datetime

import numpy as np
import pydicom
import pytest

from app.services.imaging import ImagingService, ViewerIdentity, watermark_fields
from tests.unit.imaging.test_watermark import decode_png

WHEN = datetime(2026, 11, 22, 9, 30, tzinfo=UTC)


@pytest.fixture
def calls():
    return []


@pytest.fixture
def service(calls):
    return ImagingService(audit=lambda action, oid: calls.append((action, oid)),
                          clock=lambda: WHEN)


def test_open_sorts_and_first_look_decodes_one_file(service, small_series):
    folder = small_series[0].parent
    first = asyncio.run(service.first_look([folder]))
    assert len(first) == 1 and first.frame(0).shape == (64, 64)
    result = asyncio.run(service.open([folder]))
    assert len(result.series) == 1 and not result.failures
    handle = result.series[0]
    assert len(handle) == 6 and handle.sorted_by == "position"
    # The first-look image is found again in the sorted series.
    assert handle.index_of_sop(first.sop_uid(0)) is not None
    stop = threading.Event()
    seen = []
    assert handle.prefetch(lambda done, total: seen.append((done, total)), stop, 3) == 0
    assert seen[-1] == (6, 6)
    assert handle.thumbnail(32).shape[0] <= 32


def test_tags_list_nested_and_binary_values(service, small_series):
    handle = asyncio.run(service.open([small_series[0]])).series[0]
    rows = handle.tags(0)
    by_keyword = {r.keyword: r for r in rows}
    assert by_keyword["PatientName"].value == "SYNTHETIC^PATIENT"
    assert by_keyword["PixelData"].value == "(8192 bytes)"
    assert all(r.depth == 0 for r in rows)


def test_watermarked_export_writes_png_and_audits_once(service, calls, small_series, tmp_path):
    handle = asyncio.run(service.open([small_series[0].parent])).series[0]
    fields = service.watermark(ViewerIdentity("drhouse", "WS0042"), handle)
    assert fields.burned_lines() == ["drhouse @ WS0042", "Exported 2026-11-22 09:30 UTC",
                                     "Patient ID SYN-0001"]
    pixels = handle.render(0)
    target = tmp_path / "x.png"
    asyncio.run(service.export_image(pixels, target, "PNG", fields, handle.object_id))
    written = decode_png(target.read_bytes())
    assert written.shape == (512, 512)  # 64 px enlarged 8x for a legible watermark
    assert not np.array_equal(written, pixels.repeat(8, 0).repeat(8, 1))
    assert calls == [("image.export", handle.object_id)]
    assert "SYN" not in handle.object_id and len(handle.object_id) < 128
    # A failed write is not audited as an export.
    with pytest.raises(OSError):
        asyncio.run(service.export_image(pixels, tmp_path / "no" / "x.png", "PNG", fields,
                                         handle.object_id))
    assert len(calls) == 1
    service.record_print(handle.object_id)
    assert calls[-1] == ("file.print", handle.object_id)


def test_watermark_fields_without_patient_id():
    from app.core.phi import Phi

    fields = watermark_fields(ViewerIdentity("u", "d"), Phi(""), WHEN)
    assert fields.burned_lines()[-1] == "Patient ID (none)"


def test_deidentified_export_summary(service, calls, small_series, tmp_path):
    handle = asyncio.run(service.open([small_series[0].parent])).series[0]
    summary = asyncio.run(service.export_deidentified(handle, tmp_path / "out"))
    assert summary.written == 6 and summary.failed == 0
    out = sorted((tmp_path / "out").glob("*.dcm"))
    assert str(pydicom.dcmread(out[0]).PatientID) != "SYN-0001"
    assert calls == [("image.export", handle.object_id)]

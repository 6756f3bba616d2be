"""Fixtures for the viewer tests: small generated series, an ImagesView wired like the
composition root would wire it (fixed identity, recording audit callable)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pydicom
import pytest

from app.services.imaging import (
    PATIENT_DATA_ACTION,
    VIEW_ACTION,
    ImagingService,
    ViewerIdentity,
)
from app.ui.views.images import ImagesView
from tests.support.dicom_gen import write_ct_series

USER = "drhouse"
DEVICE = "WS0042"
WHEN = datetime(2026, 11, 22, 9, 30, tzinfo=UTC)


class AuditRecorder:
    """``calls``: exports and prints; ``access``: what was looked at (``image.open``,
    ``patient.open``: tests/ui/audit/test_audited_viewer.py checks those)."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str]] = []
        self.access: list[tuple[str, str]] = []

    def __call__(self, action: str, object_id: str) -> None:
        kept = self.access if action in (VIEW_ACTION, PATIENT_DATA_ACTION) else self.calls
        kept.append((action, object_id))


@pytest.fixture(scope="session")
def ct_dir(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("ct8")
    write_ct_series(out, 8, rows=96, cols=96, pixel_spacing=0.5)
    return out


@pytest.fixture(scope="session")
def ct_dir_b(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("ct5b")
    write_ct_series(out, 5, rows=80, cols=80, seed=7, patient_name="OTHER^PATIENT",
                    patient_id="SYN-0002")
    return out


@pytest.fixture(scope="session")
def no_spacing_dir(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("nospacing")
    for path in write_ct_series(out, 3, rows=64, cols=64, seed=11):
        ds = pydicom.dcmread(path)
        del ds.PixelSpacing
        ds.save_as(path, enforce_file_format=True)
    return out


@pytest.fixture
def audit() -> AuditRecorder:
    return AuditRecorder()


@pytest.fixture
def view(qtbot, qloop, audit):
    v = ImagesView()
    v.configure(service=ImagingService(audit=audit, clock=lambda: WHEN),
                identity=ViewerIdentity(USER, DEVICE))
    v.resize(1200, 760)
    qtbot.addWidget(v)
    v.show()
    qtbot.waitExposed(v)
    return v


def open_and_wait(qtbot, view: ImagesView, sources, *, prefetch: bool = True) -> None:
    task = view.open_paths(sources)
    qtbot.waitUntil(task.done, timeout=10_000)
    assert task.exception() is None
    if prefetch:
        qtbot.waitUntil(view.prefetch_done, timeout=10_000)

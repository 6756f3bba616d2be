"""Imaging value types shared by the imaging layer and the layers above it (stdlib only).

Patient-identifying fields are wrapped in :class:`~app.core.phi.Phi` so that a study header
can be logged or put in an exception by mistake without leaking who it belongs to.
"""

from __future__ import annotations

from dataclasses import dataclass

from app.core.phi import Phi


@dataclass(frozen=True, slots=True)
class WindowLevel:
    """A VOI window (PS3.3 C.11.2.1.2): centre and width in modality units (e.g. HU)."""

    center: float
    width: float
    name: str = ""

    def __post_init__(self) -> None:
        # The standard requires width >= 1; a zero or negative width would divide by zero.
        if not self.width >= 1.0:
            raise ValueError("window width must be >= 1")


# Presets a radiologist expects by name (centre/width in HU).
PRESETS: dict[str, WindowLevel] = {
    "brain": WindowLevel(40, 80, "brain"),
    "subdural": WindowLevel(75, 215, "subdural"),
    "lung": WindowLevel(-600, 1500, "lung"),
    "bone": WindowLevel(400, 1800, "bone"),
    "abdomen": WindowLevel(40, 400, "abdomen"),
    "mediastinum": WindowLevel(50, 350, "mediastinum"),
    "liver": WindowLevel(60, 160, "liver"),
}


@dataclass(frozen=True, slots=True)
class PatientInfo:
    name: Phi[str]
    patient_id: Phi[str]
    birth_date: Phi[str]
    sex: Phi[str]


@dataclass(frozen=True, slots=True)
class StudyInfo:
    """One study. UIDs are opaque keys (not shown to users, not logged)."""

    study_uid: str
    patient: PatientInfo
    study_date: Phi[str]
    description: Phi[str]
    accession_number: Phi[str]


@dataclass(frozen=True, slots=True)
class SeriesInfo:
    series_uid: str
    study: StudyInfo
    modality: str
    description: Phi[str]
    series_number: int | None
    instance_count: int


@dataclass(frozen=True, slots=True)
class Measurement:
    """A distance or angle. ``calibrated`` is False when the value is in pixels, or when the
    spacing came from ImagerPixelSpacing (detector plane, not the patient: magnification
    is not corrected), so the viewer can say so next to the number."""

    value: float
    unit: str
    calibrated: bool
    note: str = ""

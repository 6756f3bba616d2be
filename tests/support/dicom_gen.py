"""Synthetic, deterministic CT series for tests and benchmarks.

A 16-bit CT Image Storage series (512 x 512 x N by default) of a simple phantom: air, a
water-equivalent body ellipse, two lungs, a bone ring and a sphere that moves through the
slices, plus seeded noise. Every file is a valid DICOM Part 10 file (Explicit VR Little
Endian) with the attributes a viewer needs: UIDs, ImagePositionPatient along z,
ImageOrientationPatient, PixelSpacing, RescaleSlope/Intercept, WindowCenter/Width.
File names are deliberately not in slice order, so that sorting is exercised.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import PYDICOM_IMPLEMENTATION_UID, CTImageStorage, ExplicitVRLittleEndian

ROOT = "2.25"  # UUID-derived UIDs (PS3.5 B.2) from fixed integers: deterministic


@dataclass(frozen=True)
class SeriesSpec:
    slices: int = 300
    rows: int = 512
    cols: int = 512
    pixel_spacing: float = 0.7
    slice_thickness: float = 1.25
    seed: int = 20261122
    patient_name: str = "SYNTHETIC^PATIENT"
    patient_id: str = "SYN-0001"


def _uid(*parts: int) -> str:
    value = 0
    for part in parts:
        value = value * 1_000_003 + part
    return f"{ROOT}.{value % (1 << 128)}"


def phantom_hu(spec: SeriesSpec, index: int, rng: np.random.Generator) -> np.ndarray:
    """Slice ``index`` of the phantom in Hounsfield units (int16)."""
    y, x = np.mgrid[0 : spec.rows, 0 : spec.cols].astype(np.float32)
    cy, cx = spec.rows / 2, spec.cols / 2
    img = np.full((spec.rows, spec.cols), -1000.0, dtype=np.float32)
    body = ((x - cx) / (0.42 * spec.cols)) ** 2 + ((y - cy) / (0.32 * spec.rows)) ** 2
    img[body <= 1.0] = 40.0
    ring = (body > 0.82) & (body <= 0.9)
    img[ring] = 700.0
    for side in (-1, 1):
        lung = ((x - cx - side * 0.18 * spec.cols) / (0.12 * spec.cols)) ** 2 + (
            (y - cy) / (0.2 * spec.rows)) ** 2
        img[lung <= 1.0] = -800.0
    z = index / max(spec.slices - 1, 1)
    sphere = (x - cx) ** 2 + (y - cy - 0.1 * spec.rows) ** 2
    radius = 0.08 * spec.cols * np.sin(np.pi * z)
    img[sphere <= radius * radius] = 300.0
    img += rng.normal(0.0, 12.0, size=img.shape).astype(np.float32)
    return np.clip(np.rint(img), -1024, 3071).astype(np.int16)


def ct_slice(spec: SeriesSpec, index: int, hu: np.ndarray) -> Dataset:
    study, series, frame = _uid(spec.seed, 1), _uid(spec.seed, 2), _uid(spec.seed, 3)
    sop = _uid(spec.seed, 4, index)
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = CTImageStorage
    meta.MediaStorageSOPInstanceUID = sop
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    meta.ImplementationClassUID = PYDICOM_IMPLEMENTATION_UID
    ds = Dataset()
    ds.file_meta = meta
    ds.SpecificCharacterSet = "ISO_IR 100"
    ds.ImageType = ["ORIGINAL", "PRIMARY", "AXIAL"]
    ds.SOPClassUID = CTImageStorage
    ds.SOPInstanceUID = sop
    ds.StudyDate = ds.SeriesDate = ds.ContentDate = "20260101"
    ds.StudyTime = ds.SeriesTime = ds.ContentTime = "120000"
    ds.AccessionNumber = "SYNACC1"
    ds.Modality = "CT"
    ds.Manufacturer = "SafeConsult synthetic"
    ds.ReferringPhysicianName = ""
    ds.StudyDescription = "Synthetic phantom"
    ds.SeriesDescription = f"Phantom {spec.rows}x{spec.cols}x{spec.slices}"
    ds.PatientName = spec.patient_name
    ds.PatientID = spec.patient_id
    ds.PatientBirthDate = "19700101"
    ds.PatientSex = "O"
    ds.KVP = "120"
    ds.SliceThickness = f"{spec.slice_thickness:g}"
    ds.PatientPosition = "HFS"
    ds.StudyInstanceUID = study
    ds.SeriesInstanceUID = series
    ds.StudyID = "1"
    ds.SeriesNumber = "1"
    ds.Laterality = ""
    ds.AcquisitionNumber = "1"
    ds.InstanceNumber = str(index + 1)
    z = -index * spec.slice_thickness  # feet-first numbering would reverse: we go head->feet
    half_w = spec.cols * spec.pixel_spacing / 2
    half_h = spec.rows * spec.pixel_spacing / 2
    ds.ImagePositionPatient = [f"{-half_w:g}", f"{-half_h:g}", f"{z:g}"]
    ds.ImageOrientationPatient = ["1", "0", "0", "0", "1", "0"]
    ds.FrameOfReferenceUID = frame
    ds.PositionReferenceIndicator = ""
    ds.SliceLocation = f"{z:g}"
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.Rows, ds.Columns = spec.rows, spec.cols
    ds.PixelSpacing = [f"{spec.pixel_spacing:g}", f"{spec.pixel_spacing:g}"]
    ds.BitsAllocated, ds.BitsStored, ds.HighBit = 16, 12, 11
    ds.PixelRepresentation = 0
    ds.WindowCenter, ds.WindowWidth = ["40", "-600"], ["400", "1500"]
    ds.WindowCenterWidthExplanation = ["ABDOMEN", "LUNG"]
    ds.RescaleIntercept, ds.RescaleSlope, ds.RescaleType = "-1024", "1", "HU"
    stored = (hu.astype(np.int32) + 1024).clip(0, 4095).astype("<u2")
    ds.PixelData = stored.tobytes()
    return ds


def write_ct_series(out_dir: Path, slices: int = 300, **overrides: object) -> list[Path]:
    """Write the series to ``out_dir``; return the paths in slice (z) order."""
    spec = SeriesSpec(slices=slices, **overrides)  # type: ignore[arg-type]
    out_dir.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(spec.seed)
    paths = []
    for index in range(spec.slices):
        ds = ct_slice(spec, index, phantom_hu(spec, index, rng))
        # Names in a scrambled but fixed order: file order must not be slice order.
        name = f"CT{(index * 7919) % 1_000_003:07d}.dcm"
        path = out_dir / name
        ds.save_as(path, enforce_file_format=True)
        paths.append(path)
    return paths

from __future__ import annotations

import os
from pathlib import Path

import pydicom.data
import pytest

TEST_FILES = Path(os.path.dirname(pydicom.data.get_testdata_file("CT_small.dcm")))


def all_test_files() -> list[Path]:
    """Every file pydicom ships in its test_files folder (DICOM or not)."""
    return sorted(p for p in TEST_FILES.rglob("*") if p.is_file())


def data_file(name: str) -> Path:
    path = TEST_FILES / name
    assert path.is_file(), name
    return path


@pytest.fixture(scope="session")
def small_series(tmp_path_factory) -> list[Path]:
    from tests.support.dicom_gen import write_ct_series

    out = tmp_path_factory.mktemp("series")
    return write_ct_series(out, 6, rows=64, cols=64)

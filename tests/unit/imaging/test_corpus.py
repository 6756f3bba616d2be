"""Every file pydicom ships either renders (uint8, right shape) or raises one of our typed
errors -- never another exception, never a hang (pytest-timeout per file)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from app.imaging.decode import frame_count
from app.imaging.errors import ImagingError
from app.imaging.load import read_dataset
from app.imaging.overlay import burn_in, overlays
from app.imaging.render import load_frame
from tests.unit.imaging.conftest import TEST_FILES, all_test_files

FILES = all_test_files()


def test_corpus_is_there():
    # Guard against the parametrised test silently shrinking to nothing.
    assert len(FILES) > 150


@pytest.mark.timeout(30)
@pytest.mark.parametrize("path", FILES, ids=[str(p.relative_to(TEST_FILES)) for p in FILES])
def test_renders_or_raises_typed_error(path: Path):
    try:
        ds = read_dataset(path)
        frames = frame_count(ds)
        for index in sorted({0, frames - 1}):
            frame = load_frame(ds, index)
            image = burn_in(frame.render(), overlays(ds, index))
            assert image.dtype == np.uint8
            rows, cols = int(ds.Rows), int(ds.Columns)
            assert image.shape in ((rows, cols), (rows, cols, 3))
            if frame.windows:
                assert frame.render(frame.windows[-1]).shape == image.shape
    except ImagingError as exc:
        # Typed, with a user message, and a detail that does not echo file content.
        assert exc.user_message
        text = str(exc)
        assert "^" not in text  # person names are written Family^Given in DICOM
    # any other exception fails the test


def test_outcome_counts_are_plausible():
    # Most image files must render: a decoder plugin going missing would show up here
    # as a wave of typed errors that the test above alone would accept.
    rendered = 0
    for path in FILES:
        try:
            load_frame(read_dataset(path), 0).render()
            rendered += 1
        except ImagingError:
            pass
    assert rendered >= 85

from __future__ import annotations

import numpy as np

from app.core.imaging_types import PRESETS
from app.imaging.load import load, read_dataset
from app.imaging.render import load_frame
from app.imaging.stack import SliceStack
from tests.unit.imaging.conftest import data_file


def test_stack_renders_in_display_order_and_reuses_frames(small_series):
    (series,) = load([small_series[0].parent]).series
    stack = SliceStack(series)
    assert len(stack) == len(small_series)
    for i, inst in enumerate(series.instances):
        expected = load_frame(inst.dataset).render(PRESETS["lung"])
        assert np.array_equal(stack.render(i, PRESETS["lung"]), expected)
    assert stack.frame(2) is stack.frame(2)  # cached, not decoded again


def test_stack_cache_is_bounded(small_series):
    (series,) = load([small_series[0].parent]).series
    one = load_frame(series.instances[0].dataset).nbytes
    stack = SliceStack(series, cache_bytes=2 * one)
    first = stack.frame(0)
    for i in range(1, len(stack)):
        stack.frame(i)
    assert stack.frame(0) is not first  # evicted and decoded again
    assert stack._held <= 2 * one


def test_multiframe_object_gives_one_slot_per_frame():
    (series,) = load([data_file("rtdose.dcm")]).series
    stack = SliceStack(series)
    ds = read_dataset(data_file("rtdose.dcm"))
    assert len(stack) == int(ds.NumberOfFrames) == 15
    assert np.array_equal(stack.render(14), load_frame(ds, 14).render())

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from app.core.wipe import (
    STEPS,
    OfflineAction,
    WipeMarker,
    WipeMarkerError,
    WipeReport,
    WipeStep,
    offline_action,
)

H = 3600


def test_steps_destroy_keys_before_files():
    assert list(STEPS) == sorted(STEPS)
    assert WipeStep.MARKER_WRITTEN < WipeStep.KEYS_DESTROYED < WipeStep.FILES_DELETED
    assert STEPS[-1] is WipeStep.MARKER_REMOVED


def test_marker_round_trip_and_holds_no_secrets():
    marker = WipeMarker("remote", 123, (("alice@x", "DEV1"), ("bob", "DEV1")))
    raw = marker.to_bytes()
    assert WipeMarker.from_bytes(raw) == marker
    assert set(json.loads(raw)) == {"v", "reason", "requested_ms", "key_owners"}


@pytest.mark.parametrize("raw", [b"", b"{", b"[]", b'{"reason": "x"}', b"\xff\xfe"])
def test_damaged_marker_is_a_typed_error(raw):
    with pytest.raises(WipeMarkerError):
        WipeMarker.from_bytes(raw)


def test_report_complete_only_with_all_steps_and_no_problems():
    report = WipeReport("remote", resumed=False, steps=list(STEPS))
    assert report.complete
    report.problems.append("x")
    assert not report.complete
    assert not WipeReport("remote", resumed=False, steps=list(STEPS[:-1])).complete


@pytest.mark.parametrize(
    ("offline_s", "expected"),
    [
        (0, OfflineAction.OK),
        (8 * H - 1, OfflineAction.OK),
        (8 * H, OfflineAction.LOCK),
        (72 * H - 1, OfflineAction.LOCK),
        (72 * H, OfflineAction.WIPE),
        (-100, OfflineAction.OK),  # small skew: fine
        (-301, OfflineAction.LOCK),  # clock set back: cannot be trusted
    ],
)
def test_offline_action(offline_s, expected):
    now = 1_800_000_000
    got = offline_action(now - offline_s, now, grace_s=8 * H, wipe_after_s=72 * H)
    assert got is expected


@given(
    a=st.floats(min_value=0, max_value=1e6), b=st.floats(min_value=0, max_value=1e6),
    grace=st.floats(min_value=1, max_value=1e5), extra=st.floats(min_value=0, max_value=1e5),
)
def test_offline_action_is_monotonic(a, b, grace, extra):
    order = [OfflineAction.OK, OfflineAction.LOCK, OfflineAction.WIPE]
    lo, hi = sorted((a, b))
    first = offline_action(0, lo, grace_s=grace, wipe_after_s=grace + extra)
    later = offline_action(0, hi, grace_s=grace, wipe_after_s=grace + extra)
    assert order.index(first) <= order.index(later)


def test_offline_action_refuses_bad_limits():
    with pytest.raises(ValueError):
        offline_action(0, 1, grace_s=10, wipe_after_s=5)

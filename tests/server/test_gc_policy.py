"""The server process's full garbage collections run between pushes (core/gc_policy.py)."""

from __future__ import annotations

import subprocess
import sys

from server_stub.core.gc_policy import GcSteward


def test_full_collection_waits_for_a_quiet_round_or_the_longest_gap():
    steward = GcSteward(0.0, idle_gap_s=30, max_gap_s=300)
    # Pushes flowing (the activity counter moves every round): no collection ...
    assert not any(steward.tick(float(t), activity=t) for t in range(1, 300))
    # ... until the longest gap, then the count starts again.
    assert steward.tick(300.0, activity=300)
    assert not steward.tick(301.0, activity=301)
    # Quiet rounds: a collection once the last one is idle_gap_s old, not before.
    assert not any(steward.tick(float(t), activity=301) for t in range(302, 330))
    assert steward.tick(330.0, activity=301)
    assert not steward.tick(331.0, activity=301)


def test_manage_turns_off_only_the_automatic_full_collection():
    code = ("import gc; before = gc.get_threshold();"
            "from server_stub.core import gc_policy; gc_policy.manage();"
            "after = gc.get_threshold();"
            "print(before[:2] == after[:2], after[2] >= 1 << 30, gc.isenabled(),"
            " gc_policy.managed())")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, timeout=60).stdout.split()
    assert out == ["True", "True", "True", "True"]

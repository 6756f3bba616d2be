"""When the server process collects cyclic garbage: only between pushes.

CPython's automatic full (generation 2) collection walks every tracked object. With a
thousand connected devices the server holds about 280,000 of them, and one full collection
took 130-175 ms on the event loop thread (measured in the relay benchmark, after the
connections were made): every push waiting behind it was that late, which set the relay's
p99 latency in the runs where it fell inside the 200 events/s phase.

``manage()`` (called by ``serve``, so for the server process only -- not for a test process
that runs the server in a thread) turns the automatic full collection off; younger
generations are still collected as usual. :class:`GcSteward` then decides, once a second,
whether to run the full collection itself: when nothing was delivered for a whole round and
the last one is ``idle_gap_s`` old, or in any case every ``max_gap_s`` -- so a constantly
busy server still frees its garbage cycles, just at a moment of its own choosing.
"""

from __future__ import annotations

import gc

_managed = False


def manage() -> None:
    """Leave full collections to the steward (young generations collect as before)."""
    global _managed
    gen0, gen1, _ = gc.get_threshold()
    gc.set_threshold(gen0, gen1, 1 << 30)  # never reached: no automatic full collection
    _managed = True


def managed() -> bool:
    return _managed


class GcSteward:
    """``tick(now, activity)`` once a round: True when a full collection should run now.
    ``activity`` is a counter that moves whenever something is pushed."""

    def __init__(self, now: float, *, idle_gap_s: float = 30.0, max_gap_s: float = 300.0
                 ) -> None:
        self.idle_gap_s = idle_gap_s
        self.max_gap_s = max_gap_s
        self.last_full = now
        self._activity: int | None = None

    def tick(self, now: float, activity: int) -> bool:
        idle = activity == self._activity
        self._activity = activity
        since = now - self.last_full
        if (idle and since >= self.idle_gap_s) or since >= self.max_gap_s:
            self.last_full = now
            return True
        return False

"""aiortc decodes each received track on a thread of its own that is *not* a daemon: it ends
when its receiver is stopped (the peer connection closed). A test that leaves a peer
connection open would keep the whole test process alive after its last test (seen once in a
CI run: pytest's summary printed, then ``threading._shutdown`` waiting on an "audio-decoder"
thread). After each test such threads are given a moment to end; one still running is ended
the way ``RTCRtpReceiver.stop`` ends it, and the test is named at the end of the run."""

from __future__ import annotations

import threading
import time


def decoder_threads() -> set[threading.Thread]:
    return {t for t in threading.enumerate()
            if t.is_alive() and getattr(getattr(t, "_target", None), "__name__", "")
            == "decoder_worker"}


def end_leftovers(before: set[threading.Thread], grace_s: float = 2.0) -> int:
    """End the decoder threads started since ``before`` that outlive ``grace_s``; returns
    how many had to be ended."""
    started = decoder_threads() - before
    deadline = time.monotonic() + grace_s
    while started and time.monotonic() < deadline:
        time.sleep(0.05)
        started = {t for t in started if t.is_alive()}
    for thread in started:
        args = getattr(thread, "_args", ())
        if len(args) > 1:
            args[1].put(None)  # its input queue: None ends the worker
    return len(started)

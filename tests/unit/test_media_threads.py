"""The suite's safety net for peer connections left open (tests/support/media_threads.py):
aiortc's own decoder thread, never stopped, is found and ended, so the run can exit."""

from __future__ import annotations

import asyncio
import queue
import threading

from aiortc.rtcrtpreceiver import decoder_worker

from tests.support import media_threads


def test_a_decoder_thread_left_running_is_ended():
    before = media_threads.decoder_threads()
    loop = asyncio.new_event_loop()
    try:
        inputs: queue.Queue = queue.Queue()
        thread = threading.Thread(target=decoder_worker, name="audio-decoder",
                                  args=(loop, inputs, asyncio.Queue(), threading.Event()))
        thread.start()
        assert not thread.daemon and thread in media_threads.decoder_threads()
        assert media_threads.end_leftovers(before, grace_s=0.1) == 1
        thread.join(5)
        assert not thread.is_alive()
        loop.run_until_complete(asyncio.sleep(0.01))  # the track's end it scheduled
        assert media_threads.end_leftovers(before, grace_s=0.1) == 0
    finally:
        loop.close()

"""Sound out in a call (docs/calls.md, "Sound output"): real workstations through the real
server, real aiortc peers; the speaker is a stand-in for sounddevice's output stream (this
machine has none), and what reaches it is checked."""

from __future__ import annotations

import numpy as np

from tests.integration.test_calls import consult, flowing, new_peer, wait_for
from tests.unit.rtc.test_playback import FakeOutputStream, peaks, playing


async def test_the_others_tone_plays_on_our_speaker_and_remote_mute_silences_it(open_server,
                                                                               tmp_path):
    alice = await new_peer(open_server, tmp_path, "dr.alice", use_turn=False)
    bob = await new_peer(open_server, tmp_path, "dr.bob", use_turn=False,
                         speaker="default", speaker_stream=FakeOutputStream)
    try:
        room_id = await consult(alice, bob)
        call = await alice.calls.place_call(room_id, peers=[bob.party])
        await wait_for(lambda: flowing(alice, bob, 5))
        player = bob.calls.players[call.call_id]
        assert call.call_id not in alice.calls.players  # no speaker chosen: none opened
        stream = FakeOutputStream.instances[-1]
        await wait_for(lambda: len(playing(stream)) > 48_000, 20)
        pcm = playing(stream)[-48_000:]
        assert abs(peaks(pcm, 48_000)[0] - 440) < 5  # Alice's tone, through Opus
        # Latency bound: what waits in the jitter buffer stays small.
        assert player.buffered_ms(alice.party) <= 160

        bob.calls.set_remote_muted(call.call_id, True)
        assert bob.calls.remote_muted(call.call_id)
        before = len(stream.out)
        await wait_for(lambda: len(stream.out) > before + 30)
        assert not np.concatenate(stream.out[before + 2:]).any()
        bob.calls.set_remote_muted(call.call_id, False)
        before = len(stream.out)
        await wait_for(lambda: len(stream.out) > before + 30)
        assert np.concatenate(stream.out[before + 10:]).any()

        await alice.calls.hangup(call.call_id)
        await wait_for(lambda: call.call_id not in bob.calls.calls, 10)
        assert stream.closed and call.call_id not in bob.calls.players
    finally:
        await alice.close()
        await bob.close()

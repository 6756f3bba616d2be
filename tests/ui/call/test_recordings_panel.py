"""A member's recordings list: the host records and shares; the member's panel lists the
recording of the room, opens it (download, descriptor signature, digest, consents) and plays
it from memory -- two real clients through the real server."""

from __future__ import annotations

from app.services.transfers import TransferEngine
from app.storage.files import EncryptedFileStore
from app.ui.asyncbridge import TaskRunner
from app.ui.call.recordings import RecordingsPanel
from tests.integration.test_calls import wait_for
from tests.integration.test_recording import call_between
from tests.ui.chat.conftest import run


def test_member_opens_and_plays_a_shared_recording(qtbot, qloop, open_server, tmp_path):
    peers, services, call = run(qtbot, call_between(open_server, tmp_path, "dr.host",
                                                    "dr.bob", answers=(True,)))
    host, bob = peers
    engines = [TransferEngine.for_session(p.ws.session) for p in peers]
    for service, peer, engine in zip(services, peers, engines, strict=True):
        service.chat, service.engine = peer.chat, engine
        peer.chat.room_event.connect(service._on_room_event)
    room_id = host.calls.rooms[call.call_id]
    try:
        run(qtbot, services[0].record(call.call_id))
        run(qtbot, wait_for(lambda: host.calls.calls[call.call_id].links[bob.party]
                            .stats.video_frames > 40, 10))
        run(qtbot, services[0].stop(call.call_id))

        runner = TaskRunner()
        panel = RecordingsPanel(services[1], runner, room_id,
                                name_of=lambda uid: bob.chat.username(uid) or uid)
        qtbot.addWidget(panel)
        panel.show()
        assert panel.list.count() == 0
        for _ in range(40):
            run(qtbot, bob.chat.sync_once())
            if panel.list.count():
                break
        assert panel.list.count() == 1 and "dr.host" in panel.list.item(0).text()

        panel.open_selected()
        qtbot.waitUntil(lambda: panel.player is not None, timeout=20_000)
        player = panel.player
        assert player.who.count() == 2  # the host's own media and Bob's
        assert {player.who.itemText(i) for i in range(2)} == {"dr.host", "dr.bob"}
        assert player.duration_ms > 500 and player.current_image is not None
        assert "consent" in panel.status.text()
        player.seek(player.duration_ms // 2)
        assert player.position_ms > 0
        assert len(EncryptedFileStore(bob.ws.session.cache).ids()) == 1
    finally:
        for engine in engines:
            run(qtbot, engine.stop())
        for peer in peers:
            run(qtbot, peer.close())

"""Calls end to end: real workstations (own device identity, keyring, SQLCipher cache) signed
in to the real server over TLS, signaling through POST /v1/rooms/{room}/signal and the push
socket, real aiortc peers on loopback, a real coturn for the TURN cases.
"""

from __future__ import annotations

import asyncio
import json
import re
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass

import pytest

from app.core.errors import SafeConsultError
from app.rtc.call import CallOptions, LinkState
from app.rtc.ice import candidate_types
from app.rtc.signing import FingerprintMismatch, Party
from app.services.calls import CallEvent, CallsService
from app.services.chat import ChatService
from tests.integration.conftest import Workstation
from tests.support.clients import UserCreds, create_user, next_totp_code
from tests.support.server import start_server

TURN_SECRET = "coturn-shared-secret-for-calls"
SIGNED_FIELDS = {"v", "sdp_type", "sdp", "generation", "ts_ms", "fingerprints", "signature"}


# -- fixtures ----------------------------------------------------------------------------------

def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
        udp.bind(("127.0.0.1", 0))
        return udp.getsockname()[1]


class Coturn:
    """Debian's coturn on loopback with the REST shared secret; stop()/start() on one port."""

    def __init__(self, root) -> None:
        self.root = root
        self.port = _free_port()
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        """Start on this port; on the first start, a port that turns out to be taken (another
        coturn's relay range, a parallel run) is swapped for a fresh one, up to three tries.
        A restart keeps its port: the recovery test needs the same address back."""
        first = self.process is None and not getattr(self, "_started_once", False)
        for attempt in range(3 if first else 1):
            try:
                self._start_once()
                self._started_once = True
                return
            except TimeoutError:
                self.stop()
                if attempt == 2 or not first:
                    raise
                self.port = _free_port()

    def _start_once(self) -> None:
        self.process = subprocess.Popen(
            ["turnserver", "-n", "--listening-ip=127.0.0.1", "--relay-ip=127.0.0.1",
             f"--listening-port={self.port}", "--use-auth-secret",
             f"--static-auth-secret={TURN_SECRET}", "--realm=safeconsult", "--no-tls",
             "--no-dtls", "--no-cli", "--allow-loopback-peers",
             f"--pidfile={self.root / 'turn.pid'}", "--log-file=stdout", "--simple-log"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=self.root)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise TimeoutError(f"coturn exited ({self.process.returncode}) on {self.port}")
            with socket.socket() as probe:
                if probe.connect_ex(("127.0.0.1", self.port)) == 0:
                    return
            time.sleep(0.05)
        raise TimeoutError("coturn did not start")

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(timeout=10)
            self.process = None


@pytest.fixture
def coturn(tmp_path):
    if shutil.which("turnserver") is None:
        pytest.skip("coturn not installed")
    turn = Coturn(tmp_path)
    turn.start()
    yield turn
    turn.stop()


@pytest.fixture
def turn_server(tmp_path, coturn):
    running = start_server(tmp_path / "turn-server", require_device_approval=False,
                           login_backoff_base_ms=0, turn_secret=TURN_SECRET,
                           turn_urls=(f"turn:127.0.0.1:{coturn.port}?transport=udp",))
    yield running
    running.stop()


@dataclass
class Peer:
    creds: UserCreds
    ws: Workstation
    chat: ChatService
    calls: CallsService
    events: list[CallEvent]
    sent: list[tuple[str, str, dict]]  # (kind, to_device, payload) as handed to the relay

    @property
    def party(self) -> Party:
        return self.calls.local

    async def close(self) -> None:
        await self.calls.stop()
        await self.chat.stop()
        await self.ws.session.aclose()


def recording(peer_sent: list, rewrite=None):
    def wrap(send):
        async def wrapped(transport, room_id, **kw):
            payload = kw["payload"]
            if rewrite is not None:
                payload = kw["payload"] = rewrite(kw["kind"], payload)
            peer_sent.append((kw["kind"], kw["to_device_id"], payload))
            return await send(transport, room_id, **kw)
        return wrapped
    return wrap


async def new_peer(server, tmp_path, name: str, *, rewrite=None, **options) -> Peer:
    creds = create_user(server, name)
    ws = Workstation(server, tmp_path / f"ws-{name}")
    code = await next_totp_code(server, creds.username, creds.totp_secret)
    await ws.session.sign_in(creds.username, creds.password, code)
    # ``chat_background``: the chat's own loops run (push socket and sync), as in the app;
    # the poll is too slow to matter, so what arrives comes by push.
    background = options.pop("chat_background", False)
    chat = ChatService(ws.session, poll_interval_s=600) if background else ChatService(ws.session)
    await chat.start(background=background)
    sent: list = []
    events: list[CallEvent] = []
    call_options = options.pop("call_options", None) or CallOptions(video_tag=len(name))
    auto_accept = options.pop("auto_accept", True)
    calls = CallsService(ws.session, chat, auto_accept=auto_accept, options=call_options,
                         send_wrapper=recording(sent, rewrite), **options)
    calls.event.connect(events.append)
    await calls.start()
    return Peer(creds, ws, chat, calls, events, sent)


async def consult(owner: Peer, *others: Peer) -> str:
    room_id = await owner.chat.create_room()
    for other in others:
        await owner.chat.invite(room_id, other.creds.username)
        await other.chat.refresh_rooms()
        await other.chat.join(room_id)
    for peer in (owner, *others):
        await peer.chat.refresh_rooms()
        await peer.chat.sync_once()
    return room_id


async def wait_for(predicate, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError("condition not met")
        await asyncio.sleep(0.05)


def link(peer: Peer, other: Peer):
    for call in [*peer.calls.calls.values(), *reversed(peer.calls.finished)]:
        found = call.links.get(other.party)
        if found is not None:
            return found
    return None


def flowing(a: Peer, b: Peer, frames: int = 10) -> bool:
    ab, ba = link(a, b), link(b, a)
    return (ab is not None and ba is not None and ab.stats.stamped_frames >= frames
            and ba.stats.stamped_frames >= frames)


def settled_disk_usage(server) -> int:
    """What the server has stored: its write-ahead log folded into the database first, then
    the files without the log. (The relay checkpoints in the background every second, so the
    raw file sizes move with *when* earlier writes get copied, not with what is written.)"""
    from tests.support.clients import server_db

    server_db(server).checkpoint()
    return sum(p.stat().st_size for p in server.data_dir.rglob("*")
               if p.is_file() and not p.name.endswith(("-wal", "-shm")))


def check_signals_hold_no_media(peer: Peer) -> None:
    """What a device handed the relay: signed SDP (no trickled candidates), hang-ups, rebuild
    requests, and the waiting room's knocks, invitations and refusals -- never a media byte."""
    for kind, _, payload in peer.sent:
        if kind in ("offer", "answer"):
            assert set(payload) - {"participants"} == SIGNED_FIELDS
            assert payload["sdp"].startswith("v=0")
            assert len(json.dumps(payload)) < 16_000
        else:
            assert kind in ("hangup", "invite", "reject")
            assert set(payload) <= {"rebuild", "knock", "invited", "reason"}


# -- tests -------------------------------------------------------------------------------------

async def test_a_call_through_the_real_server_carries_video_both_ways(open_server, tmp_path):
    alice = await new_peer(open_server, tmp_path, "dr.alice", use_turn=False)
    shown: list = []
    bob = await new_peer(open_server, tmp_path, "dr.bob", use_turn=False,
                         sink=lambda peer, rgb: shown.append((peer, rgb.shape)))
    try:
        room_id = await consult(alice, bob)
        call = await alice.calls.place_call(room_id)
        assert list(call.links) == [bob.party]
        await wait_for(lambda: flowing(alice, bob, 15))
        ab, ba = link(alice, bob), link(bob, alice)
        # Frames decoded on each side carry the *other* side's stamp (tag = len(name)).
        assert ab.stats.tags == {len("dr.bob")} and ba.stats.tags == {len("dr.alice")}
        assert ab.stats.audio_frames > 0 and ba.stats.audio_frames > 0
        assert ab.code and ab.code == ba.code  # both ends show the same verification code
        assert ab.route() == ba.route() == "direct"
        assert [(e.what, e.detail) for e in alice.events] == [("connected", ab.code)]
        assert shown and set(shown) == {(alice.party, (240, 320, 3))}  # what a view gets

        # Media never touches the server: while video streams, its disk does not grow.
        before = settled_disk_usage(open_server)
        frames = ab.stats.video_frames + ba.stats.video_frames
        await asyncio.sleep(1.5)
        assert ab.stats.video_frames + ba.stats.video_frames > frames + 60
        assert settled_disk_usage(open_server) - before < 16_384
        # Signals are pushed, never stored; the disk holds no SDP and no fingerprint.
        check_signals_hold_no_media(alice)
        check_signals_hold_no_media(bob)
        sdp_bits = [p["fingerprints"][0].split()[1].encode() for k, _, p in alice.sent
                    if k == "offer"]
        assert sdp_bits
        for path in open_server.data_dir.rglob("*"):
            if path.is_file():
                data = path.read_bytes()
                assert not any(bit in data for bit in sdp_bits), path
                assert b"a=fingerprint" not in data and b"m=video" not in data, path

        await alice.calls.hangup(call.call_id)
        await wait_for(lambda: ba.state is LinkState.CLOSED, 5)
        await wait_for(lambda: not bob.calls.calls, 5)  # Bob's side ended the call by itself
        assert bob.calls.finished[-1].closed
    finally:
        await alice.close()
        await bob.close()


def swap_fingerprint(kind: str, payload: dict) -> dict:
    """A relay substituting its own DTLS certificate: rewrite a=fingerprint in the offer."""
    if kind != "offer":
        return payload
    sdp = re.sub(r"(a=fingerprint:sha-256 )([0-9A-F]{2})",
                 lambda m: m.group(1) + ("00" if m.group(2) != "00" else "11"), payload["sdp"])
    return {**payload, "sdp": sdp}


async def test_a_relay_that_swaps_the_fingerprint_is_refused(open_server, tmp_path):
    alice = await new_peer(open_server, tmp_path, "dr.alice", use_turn=False,
                           rewrite=swap_fingerprint)
    bob = await new_peer(open_server, tmp_path, "dr.bob", use_turn=False)
    try:
        room_id = await consult(alice, bob)
        await alice.calls.place_call(room_id)
        await wait_for(lambda: any(e.what == "refused" for e in bob.events), 10)
        (refused,) = bob.events
        assert refused.peer == alice.party and refused.detail == "fingerprint_mismatch"
        ba = link(bob, alice)
        assert ba.state is LinkState.REFUSED and isinstance(ba.refusal, FingerprintMismatch)
        assert ba.pc is None and ba.stats.video_frames == 0
        await asyncio.sleep(1.0)
        ab = link(alice, bob)
        assert ab.state is not LinkState.CONNECTED and ab.stats.video_frames == 0
        assert [kind for kind, _, _ in bob.sent] == []  # no answer ever left Bob
    finally:
        await alice.close()
        await bob.close()


async def test_turn_relay_only_call(turn_server, tmp_path):
    alice = await new_peer(turn_server, tmp_path, "dr.alice", relay_only=True)
    bob = await new_peer(turn_server, tmp_path, "dr.bob", relay_only=True)
    try:
        room_id = await consult(alice, bob)
        await alice.calls.place_call(room_id)
        await wait_for(lambda: flowing(alice, bob, 15))
        assert link(alice, bob).route() == link(bob, alice).route() == "relay"
        for peer in (alice, bob):
            for kind, _, payload in peer.sent:
                if kind in ("offer", "answer"):
                    types = candidate_types(payload["sdp"])
                    assert types and set(types) == {"relay"}, types
            check_signals_hold_no_media(peer)
    finally:
        await alice.close()
        await bob.close()


async def test_a_dropped_relay_is_recovered_without_user_action(turn_server, coturn, tmp_path):
    options = CallOptions(stall_s=2.0, connect_timeout_s=4.0, max_backoff_s=1.0)
    alice = await new_peer(turn_server, tmp_path, "dr.alice", relay_only=True,
                           call_options=options)
    bob = await new_peer(turn_server, tmp_path, "dr.bob", relay_only=True,
                         call_options=options)
    try:
        room_id = await consult(alice, bob)
        await alice.calls.place_call(room_id)
        await wait_for(lambda: flowing(alice, bob, 10))
        ab = link(alice, bob)
        first_generation = ab.generation
        coturn.stop()  # the only media path is gone
        await wait_for(lambda: ab.state is not LinkState.CONNECTED, 10)
        coturn.start()
        await wait_for(lambda: ab.state is LinkState.CONNECTED
                       and ab.generation > first_generation, 40)
        ba = link(bob, alice)
        before = (ab.stats.stamped_frames, ba.stats.stamped_frames)
        await wait_for(lambda: ab.stats.stamped_frames > before[0] + 10
                       and ba.stats.stamped_frames > before[1] + 10, 15)
        assert ab.route() == "relay" and ab.rebuilds >= 1
        assert ba.generation == ab.generation
        assert "rebuilding" in {e.what for e in alice.events + bob.events}
        # Every rebuilt connection was signed again (a fresh offer per generation).
        offers = [p["generation"] for k, _, p in alice.sent if k == "offer"]
        assert offers[0] == first_generation and offers[-1] == ab.generation
    finally:
        await alice.close()
        await bob.close()


async def test_three_party_mesh(open_server, tmp_path):
    peers = [await new_peer(open_server, tmp_path, name, use_turn=False)
             for name in ("dr.alice", "dr.bob", "dr.carol")]
    alice, bob, carol = peers
    try:
        room_id = await consult(alice, bob, carol)
        await alice.calls.place_call(room_id)
        await wait_for(lambda: all(flowing(a, b, 10) for a, b in
                                   ((alice, bob), (alice, carol), (bob, carol))), 30)
        for me in peers:
            for other in peers:
                if other is not me:
                    assert link(me, other).stats.tags == {len(other.creds.username)}
                    assert link(me, other).code == link(other, me).code
    finally:
        for peer in peers:
            await peer.close()


async def test_a_device_our_policy_does_not_trust_gets_no_call(open_server, tmp_path):
    """Blocked (or new-and-not-accepted) devices: no key for them, so their offers are
    refused and we never call them."""
    alice = await new_peer(open_server, tmp_path, "dr.alice", use_turn=False)
    bob = await new_peer(open_server, tmp_path, "dr.bob", use_turn=False)
    try:
        room_id = await consult(alice, bob)
        await alice.chat.refresh_device_lists([bob.creds.user_id])
        assert alice.calls.key_for(bob.party.user_id, bob.party.device_id)
        alice.chat.block_device(bob.party.user_id, bob.party.device_id)
        assert alice.calls.key_for(bob.party.user_id, bob.party.device_id) is None
        with pytest.raises(SafeConsultError):
            await alice.calls.place_call(room_id)  # no trusted device to call
        await bob.calls.place_call(room_id)
        await wait_for(lambda: any(e.what == "refused" for e in alice.events), 10)
        assert [e.detail for e in alice.events] == ["unknown_device"]
        ab = link(alice, bob)
        assert ab.pc is None and ab.stats.video_frames == 0
        assert alice.sent == []
    finally:
        await alice.close()
        await bob.close()


async def test_a_forged_offer_from_a_third_device_is_refused(open_server, tmp_path):
    """Mallory, a member of the consult, replays Alice's signed offer to Bob as her own (the
    relay names her device as the sender): it is not signed by her key, Bob refuses it, and
    the call between Alice and Bob goes on."""
    alice = await new_peer(open_server, tmp_path, "dr.alice", use_turn=False)
    bob = await new_peer(open_server, tmp_path, "dr.bob", use_turn=False)
    mallory = await new_peer(open_server, tmp_path, "dr.mallory", use_turn=False)
    try:
        room_id = await consult(alice, bob, mallory)
        call = await alice.calls.place_call(room_id, peers=[bob.party])
        await wait_for(lambda: flowing(alice, bob, 5))
        (offer,) = [p for kind, _, p in alice.sent if kind == "offer"]
        await mallory.calls._send_signal(
            mallory.calls.transport, room_id, to_user_id=bob.party.user_id,
            to_device_id=bob.party.device_id, call_id=call.call_id, kind="offer",
            payload=offer)
        await wait_for(lambda: any(e.what == "refused" for e in bob.events), 10)
        (refused,) = [e for e in bob.events if e.what == "refused"]
        assert refused.peer == mallory.party and refused.detail == "bad_signature"
        assert link(bob, mallory).pc is None and not mallory.calls.calls
        before = link(bob, alice).stats.stamped_frames
        await wait_for(lambda: link(bob, alice).stats.stamped_frames > before + 10)
        assert link(bob, alice).state is LinkState.CONNECTED
    finally:
        for peer in (alice, bob, mallory):
            await peer.close()


async def test_an_incoming_call_rings_until_accepted_or_rejected(open_server, tmp_path):
    alice = await new_peer(open_server, tmp_path, "dr.alice", use_turn=False)
    bob = await new_peer(open_server, tmp_path, "dr.bob", use_turn=False, auto_accept=False)
    rings: list = []
    bob.calls.incoming.connect(rings.append)
    try:
        room_id = await consult(alice, bob)
        first = await alice.calls.place_call(room_id)
        await wait_for(lambda: len(rings) == 1, 10)
        assert (rings[0].call_id, rings[0].caller, rings[0].room_id) == (
            first.call_id, alice.party, room_id)
        await asyncio.sleep(0.5)
        assert link(alice, bob).stats.video_frames == 0 and not bob.calls.calls  # ringing
        await bob.calls.reject(first.call_id)
        await wait_for(lambda: any(e.what == "ended" for e in alice.events), 10)
        await wait_for(lambda: not alice.calls.calls, 5)  # nobody left: the call ended

        second = await alice.calls.place_call(room_id)
        await wait_for(lambda: len(rings) == 2, 10)
        await bob.calls.accept(second.call_id)
        await wait_for(lambda: flowing(alice, bob, 5))
        with pytest.raises(SafeConsultError):
            await bob.calls.accept(first.call_id)  # rejected: gone
    finally:
        await alice.close()
        await bob.close()


async def test_the_answerer_asks_for_a_rebuild_when_its_transport_closes(open_server, tmp_path):
    """Bob's peer connection goes away under the call: Bob asks (an ``invite`` signal with
    the failed generation) through the server, Alice rebuilds, both re-sign, media resumes."""
    options = CallOptions(stall_s=1.5)
    alice = await new_peer(open_server, tmp_path, "dr.alice", use_turn=False,
                           call_options=options)
    bob = await new_peer(open_server, tmp_path, "dr.bob", use_turn=False,
                         call_options=CallOptions(stall_s=1.5))
    try:
        room_id = await consult(alice, bob)
        await alice.calls.place_call(room_id)
        await wait_for(lambda: flowing(alice, bob, 5))
        ab, ba = link(alice, bob), link(bob, alice)
        await ba.pc.close()
        await wait_for(lambda: ab.generation >= 2 and ab.state is LinkState.CONNECTED
                       and ba.generation == ab.generation, 20)
        before = ba.stats.stamped_frames
        await wait_for(lambda: ba.stats.stamped_frames > before + 10, 10)
        assert ("invite", alice.party.device_id, {"rebuild": 1}) in bob.sent
        assert [p["generation"] for k, _, p in bob.sent if k == "answer"][-1] == ab.generation
        assert ab.rebuilds == ab.generation - 1  # once per failed generation
        assert ab.code == ba.code  # recomputed from the new pair of certificates
    finally:
        await alice.close()
        await bob.close()


async def test_three_party_mesh_relay_only(turn_server, tmp_path):
    peers = [await new_peer(turn_server, tmp_path, name, relay_only=True)
             for name in ("dr.alice", "dr.bob", "dr.carol")]
    alice, bob, carol = peers
    try:
        room_id = await consult(alice, bob, carol)
        await alice.calls.place_call(room_id)
        pairs = ((alice, bob), (alice, carol), (bob, carol))
        await wait_for(lambda: all(flowing(a, b, 10) for a, b in pairs), 30)
        for a, b in pairs:
            assert link(a, b).route() == link(b, a).route() == "relay"
    finally:
        for peer in peers:
            await peer.close()

"""Calls use case (Qt-free): wires the signed-in session's transport, the relay's signaling
and the E2EE device directory into ``app.rtc`` calls (docs/calls.md).

* Signals go out through ``POST /v1/rooms/{room}/signal`` and come in over a push socket of
  our own (the relay pushes to every socket of a device).
* The key a peer's offer/answer must be signed with comes from the chat service's verified
  directory view, and only for devices our trust policy lets receive room keys (blocked,
  new or changed-and-not-accepted devices get no call either).
* TURN credentials are fetched per call; ``relay_only`` forces media through TURN.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from psygnal import Signal

from app.core.errors import ConnectionFailed, SafeConsultError, ServerError
from app.crypto.devices import may_receive_keys
from app.crypto.store import TrustLevel
from app.net import signaling_api
from app.net.events import Closed, push_frames
from app.net.transport import Transport
from app.rtc import capture, playback
from app.rtc.call import (
    Call,
    CallOptions,
    FrameSink,
    LinkState,
    PeerLink,
    RawFrameSink,
    TrackFactory,
)
from app.rtc.ice import IcePolicy, TurnCredentials
from app.rtc.nettest import RelayProbe, probe_relay
from app.rtc.signing import Party
from app.services.chat import ChatService
from app.services.session import SessionService

log = logging.getLogger(__name__)


RING_S = 60.0  # an incoming call not accepted within this is dropped (the offer goes stale)
WAIT_S = 300.0  # a knock the host neither admits nor denies within this is dropped
MAX_WAITING = 16  # devices in one call's waiting room
CALL_EVENT = "sc.call"  # room event: {"call_id", "state": "active" | "ended"} from the host
ADMIT = "call.admit"  # control message host -> participants: {"t", "party": [user, device]}
# Host hand-over (docs/calls.md, "Host hand-over"): the host keeps every participant told of
# who is in the call, oldest first; when it leaves, every remaining device picks the first
# one still present, so all agree without a word from the relay.
ROSTER = "call.roster"  # host -> participants: {"t", "order": [[user, device], ...]}
HOST = "call.host"  # the new host -> participants: {"t", "host": [user, device]}


def _parties(items: Any) -> list[Party] | None:
    """A JSON list of [user, device] pairs as Parties (None if malformed)."""
    if not isinstance(items, list) or len(items) > 64:
        return None
    out: list[Party] = []
    for item in items:
        if not (isinstance(item, list) and len(item) == 2
                and all(isinstance(x, str) for x in item)):
            return None
        out.append(Party(item[0], item[1]))
    return out


class CallGone(SafeConsultError):
    user_message = "That call has ended."


class TurnRequired(SafeConsultError):
    user_message = "Calls must go through the hospital's relay, and it is not available."


@dataclass
class IncomingCall:
    call_id: str
    room_id: str
    caller: Party
    received: float = 0.0  # time.monotonic()
    offers: list[tuple[Party, str, dict[str, Any]]] = field(default_factory=list)
    invited: bool = False  # the host invites us into its running call (accept_invite knocks)


@dataclass
class JoinRequest:
    """Our request to join a running call (we knocked; the host admits or denies)."""

    call_id: str
    room_id: str
    host: Party
    state: str = "waiting"  # waiting | admitted | denied | ended | cancelled | failed
    call: Call | None = None  # once admitted
    asked: float = 0.0  # time.monotonic()
    host_left: bool = False  # the host left while we waited: we knock on the next one


@dataclass
class Waiting:
    """A device in our waiting room (we host the call)."""

    call_id: str
    party: Party
    since: float = 0.0  # time.monotonic()


@dataclass(frozen=True)
class ActiveCall:
    """A call running in a room, as its host announced it in the room's E2EE channel."""

    room_id: str
    call_id: str
    host: Party


@dataclass(frozen=True)
class CallEvent:
    call_id: str
    what: str  # connected | refused | rebuilding | tampered | ended | lost
    peer: Party
    detail: str = ""  # connected: the verification code; refused: the reason


@dataclass(frozen=True)
class CallDrop:
    """A party this device removed from a running call (docs/calls.md, "Dropped when trust
    or membership ends"), or -- ``peer`` our own device, reason ``removed`` -- our call ended
    because we are no longer a member of the consult."""

    call_id: str
    peer: Party
    reason: str  # untrusted | not_member | removed


@dataclass(frozen=True)
class NetworkReport:
    """The pre-join network test (docs/calls.md, "Pre-join network test")."""

    verdict: str  # good | turn_only | direct_only | blocked
    server_ok: bool
    server_ms: float | None = None  # the TURN-credential request's round trip (HTTPS)
    relay: RelayProbe | None = None  # None: the server offers no TURN
    relay_only: bool = False
    reason: str = ""  # blocked / direct_only: server_unreachable, relay_unreachable, no_relay

    @property
    def rtt_ms(self) -> float | None:
        return self.relay.rtt_ms if self.relay is not None else None

    @property
    def loss(self) -> float | None:
        return self.relay.loss if self.relay is not None else None


def network_verdict(*, server_ok: bool, relay: RelayProbe | None,
                    relay_only: bool) -> tuple[str, str]:
    """(verdict, reason): *good* -- the server and the TURN relay answer and media may go
    direct; *turn_only* -- they answer and policy sends media through the relay only;
    *direct_only* -- the relay cannot be reached (or there is none): calls work only between
    devices that reach each other directly; *blocked* -- no call can work (no server, or the
    relay is required and cannot be reached)."""
    if not server_ok:
        return "blocked", "server_unreachable"
    relay_ok = relay is not None and relay.allocated
    reason = "" if relay_ok else ("no_relay" if relay is None else "relay_unreachable")
    if relay_only:
        return ("turn_only", "") if relay_ok else ("blocked", reason)
    return ("good", "") if relay_ok else ("direct_only", reason)


def new_call_id() -> str:
    return "call-" + secrets.token_urlsafe(12)


class CallsService:
    incoming = Signal(object)  # IncomingCall (``invited``: an invitation into a running call)
    event = Signal(object)  # CallEvent
    waiting_changed = Signal(str)  # call id (we host it): its waiting room changed
    join_changed = Signal(object)  # JoinRequest: our knock was admitted / denied / ...
    active_changed = Signal(str)  # room id: a call started or ended there
    host_changed = Signal(str)  # call id: its host left and another device hosts it now
    dropped = Signal(object)  # CallDrop: a device no longer trusted / not a member was removed

    def __init__(self, session: SessionService, chat: ChatService, *,
                 auto_accept: bool = False, use_turn: bool = True, relay_only: bool = False,
                 options: CallOptions | None = None,
                 send_wrapper: Callable[[Any], Any] | None = None,
                 sink: FrameSink | None = None, video: TrackFactory | None = None,
                 audio: TrackFactory | None = None,
                 frame_sink: RawFrameSink | None = None, announce: bool = False,
                 speaker: str = "", speaker_stream: Any = None) -> None:
        if session.device is None:
            raise SafeConsultError("calls need a signed-in session")
        self._session = session
        self.chat = chat
        self.device = session.device
        self.local = Party(session.device.user_id, session.device.device_id)
        self.auto_accept = auto_accept
        self.use_turn = use_turn
        self.relay_only = relay_only
        self.options = options or CallOptions()
        self.sink = sink  # (peer, RGB ndarray) per decoded remote video frame, for a view
        self.frame_sink = frame_sink  # (peer, av frame): a view converts it off the loop
        self._video, self._audio = video, audio  # capture factories (default: synthetic)
        self.devices = ("", "")  # (camera, microphone) keys chosen with use_devices
        # Sound out (docs/calls.md, "Sound output"): the speaker key ("" or "none": none),
        # and a stand-in for sounddevice.OutputStream (tests: this machine has no speaker).
        self.speaker, self._speaker_stream = speaker, speaker_stream
        self.players: dict[str, playback.AudioPlayer] = {}  # call id -> its output
        self.calls: dict[str, Call] = {}
        self.rooms: dict[str, str] = {}  # call id -> room id
        self.pending: dict[str, IncomingCall] = {}
        self.finished: list[Call] = []
        self._early: dict[str, list[signaling_api.IncomingSignal]] = {}  # while accepting
        self._tasks: set[asyncio.Task] = set()
        self._pusher: asyncio.Task | None = None
        self._closing = False
        self._send_signal = signaling_api.send_signal
        if send_wrapper is not None:  # tests: a relay that rewrites signals in transit
            self._send_signal = send_wrapper(self._send_signal)
        self.push_connected = asyncio.Event()
        # Waiting room (docs/calls.md, "Waiting room and invitations").
        self.announce = announce  # tell the room (sc.call room event) when a call starts/ends
        self.waiting: dict[str, dict[Party, Waiting]] = {}  # call id (we host) -> knocks
        self.admitted: dict[str, set[Party]] = {}  # call id (we host) -> let in, still there
        self.joining: dict[str, JoinRequest] = {}  # call id -> our knock
        self.active: dict[str, ActiveCall] = {}  # room id -> the call running there
        self.rosters: dict[str, list[Party]] = {}  # call id -> who is in it, oldest first
        chat.room_event.connect(self._on_room_event)
        # Trust and membership are checked when a link is set up, and again whenever our
        # view of a user's devices or of a room's members changes (docs/calls.md).
        self._dropping: set[tuple[str, Party]] = set()
        chat.devices_changed.connect(lambda _user_id: self._view_changed())
        chat.rooms_changed.connect(self._view_changed)

    @property
    def session(self) -> SessionService:
        return self._session

    @property
    def transport(self) -> Transport:
        if self._session.transport is None:
            raise ConnectionFailed("signed out")
        return self._session.transport

    # -- life cycle ------------------------------------------------------------------------

    async def start(self, *, wait_s: float = 10.0) -> None:
        """Listen for signals; returns once the push socket is up (or after ``wait_s``:
        offline, the loop keeps reconnecting in the background)."""
        self._pusher = asyncio.get_running_loop().create_task(self._push_loop())
        try:
            await asyncio.wait_for(self.push_connected.wait(), wait_s)
        except TimeoutError:
            log.info("calls push not up yet", extra={"event": "calls_push_pending"})

    async def stop(self) -> None:
        self._closing = True
        for call_id in list(self.calls):
            await self.hangup(call_id)
        if self._pusher is not None:
            self._pusher.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._pusher
        for task in list(self._tasks):
            task.cancel()

    async def _push_loop(self) -> None:
        backoff = 0.5
        while not self._closing:
            try:
                async for frame in push_frames(self.transport):
                    backoff = 0.5
                    if isinstance(frame, Closed):
                        break
                    if frame.get("type") == "hello":
                        self.push_connected.set()
                    signal = signaling_api.parse_signal(frame)
                    if signal is not None:
                        self._spawn(self._on_signal(signal))
            except asyncio.CancelledError:
                raise
            except SafeConsultError as exc:
                log.info("calls push lost", extra={"event": "calls_push_lost",
                                                   "reason_code": exc.__class__.__name__})
            self.push_connected.clear()
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, 10.0)

    def _spawn(self, coro) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # -- trust -----------------------------------------------------------------------------

    def key_for(self, user_id: str, device_id: str) -> str | None:
        """The device's Ed25519 key from *our* directory view, if our policy trusts it."""
        if (user_id, device_id) == (self.local.user_id, self.local.device_id):
            return None
        record = self.chat.machine.devices(user_id).get(device_id)
        if record is None or not may_receive_keys(record, self.chat.machine.trust_policy):
            return None
        return record.ed25519

    async def _know(self, user_ids: list[str]) -> None:
        unknown = [u for u in user_ids if not self.chat.machine.devices(u)]
        if unknown:
            await self.chat.refresh_device_lists(unknown)

    def _left(self, room_id: str) -> set[str]:
        """Users our view of the room has as no longer joined (left, removed, lapsed). A user
        it does not list at all is not judged: our view may not have caught up yet."""
        return set(self.chat.state.members(room_id, "left")) - set(self.chat.members(room_id))

    def _still_member(self, room_id: str) -> bool:
        return (self.chat.state.room_state(room_id) != "left"
                and self.local.user_id not in self._left(room_id))

    def _unfit(self, party: Party, left: set[str]) -> str:
        """Why ``party`` may not be in a call of a room whose departed users are ``left``:
        ``untrusted`` (our policy no longer trusts its device), ``not_member``, or ""."""
        if self.key_for(party.user_id, party.device_id) is None:
            return "untrusted"
        if party.user_id in left:
            return "not_member"
        return ""

    def _view_changed(self) -> None:
        try:
            self.recheck()
        except SafeConsultError as exc:  # signed out under us (the cache closed): nothing to do
            log.info("call recheck skipped", extra={"event": "call_recheck_failed",
                                                     "reason_code": exc.__class__.__name__})

    def recheck(self) -> None:
        """Our view of devices or members changed: every party of a running call, waiting
        room, pending invitation or knock of ours that our trust policy no longer lets receive
        keys, or whose user is no longer a joined member of the call's room, is dropped at
        once (the rest of the call goes on); if *we* are no longer a member, our call ends."""
        if self._closing or not (self.calls or self.waiting or self.joining or self.pending):
            return
        for call_id, call in list(self.calls.items()):
            room_id = self.rooms.get(call_id)
            if call.closed or room_id is None:
                continue
            if not self._still_member(room_id):
                if (call_id, self.local) in self._dropping:
                    continue
                self._dropping.add((call_id, self.local))  # until it is hung up
                log.info("call ended: no longer a member", extra={"event": "call_self_removed"})
                self.dropped.emit(CallDrop(call_id, self.local, "removed"))
                self._spawn(self.hangup(call_id))
                continue
            left = self._left(room_id)
            for peer, link in list(call.links.items()):
                if link.state in (LinkState.CLOSED, LinkState.REFUSED) or (
                        (call_id, peer) in self._dropping):
                    continue
                reason = self._unfit(peer, left)
                if reason:
                    self._drop(call, room_id, peer, reason)
            for party in list(call.held):
                if self._unfit(party, left):
                    del call.held[party]
            if call.allowed is not None:
                call.allowed -= {p for p in call.allowed if self._unfit(p, left)}
            for party in list(self.waiting.get(call_id, {})):
                reason = self._unfit(party, left)
                if reason:
                    self._audit_drop(call_id, party, reason)
                    self._unwait(call_id, party)
                    self._spawn(self._signal(room_id, party, call_id, "reject",
                                             {"reason": "denied"}))
                    self.dropped.emit(CallDrop(call_id, party, reason))
        for call_id, join in list(self.joining.items()):
            if self._still_member(join.room_id) and not self._unfit(
                    join.host, self._left(join.room_id)):
                continue
            del self.joining[call_id]  # the host we knock on is not one we may call now
            join.state = "ended"
            self.join_changed.emit(join)
            self._spawn(self._signal(join.room_id, join.host, call_id, "hangup", {}))
        for call_id, pending in list(self.pending.items()):
            if not self._still_member(pending.room_id) or self._unfit(
                    pending.caller, self._left(pending.room_id)):
                del self.pending[call_id]  # its ringing stops (the view re-reads pending)

    def _drop(self, call: Call, room_id: str, peer: Party, reason: str) -> None:
        key = (call.call_id, peer)
        self._dropping.add(key)
        if call.allowed is not None:
            call.allowed.discard(peer)
        call.held.pop(peer, None)
        log.info("call party dropped", extra={"event": "call_drop", "reason_code": reason})
        self._audit_drop(call.call_id, peer, reason)
        self.dropped.emit(CallDrop(call.call_id, peer, reason))
        self._spawn(self._close_dropped(call, peer, key))

    async def _close_dropped(self, call: Call, peer: Party, key: tuple[str, Party]) -> None:
        """Close the link (media stops; the link stays, closed, so a late offer of the dropped
        device finds no way back in) and tell the other device it was hung up on."""
        try:
            link = call.links.get(peer)
            if link is None or link.state in (LinkState.CLOSED, LinkState.REFUSED):
                return
            with contextlib.suppress(Exception):
                await call.send(peer, "hangup", {})
            await link.close()
            call.notify("ended", link)  # as when it hangs up: tiles, roster, hand-over, end
        finally:
            self._dropping.discard(key)

    def _audit_drop(self, call_id: str, party: Party, reason: str) -> None:
        with contextlib.suppress(SafeConsultError):  # signed out: the drop happens anyway
            self._audit_admission("call.drop", call_id, party, reason=reason)

    def verified(self, party: Party) -> bool:
        """Whether ``party``'s device is SAS-verified in our directory view (the call view's
        "verified device"; any device a call connects to is at least trusted by policy)."""
        record = self.chat.machine.devices(party.user_id).get(party.device_id)
        return record is not None and record.trust == TrustLevel.VERIFIED

    # -- devices ---------------------------------------------------------------------------

    def use_devices(self, camera: str, microphone: str, speaker: str | None = None) -> None:
        """The camera and microphone (``app.rtc.capture`` keys) the next calls send; a device
        that cannot be opened falls back to the test pattern / tone. ``speaker`` (an
        ``app.rtc.playback`` key) plays the next calls' remote audio."""
        tag = self.options.video_tag
        self._video = lambda: capture.open_camera(camera, tag=tag)
        self._audio = lambda: capture.open_microphone(microphone)
        self.devices = (camera, microphone)
        if speaker is not None:
            self.speaker = speaker

    def set_remote_muted(self, call_id: str, muted: bool) -> None:
        """Silence the others in ``call_id`` on this device (their audio is still received)."""
        player = self.players.get(call_id)
        if player is not None:
            player.muted = muted

    def remote_muted(self, call_id: str) -> bool:
        player = self.players.get(call_id)
        return player is None or player.muted

    # -- calls -----------------------------------------------------------------------------

    async def _ice(self) -> IcePolicy:
        turn = None
        if self.use_turn or self.relay_only:
            try:
                wire = await signaling_api.turn_credentials(self.transport)
                turn = TurnCredentials(wire.uris, wire.username, wire.credential, wire.ttl_s)
            except ServerError as exc:
                if self.relay_only:
                    raise TurnRequired(f"no TURN credentials ({exc.code})") from None
        if self.relay_only and (turn is None or not turn.uris):
            raise TurnRequired("the relay offers no TURN server")
        return IcePolicy(turn=turn, relay_only=self.relay_only,
                         stun_urls=self.options.ice.stun_urls)

    async def network_test(self, *, count: int = 10, timeout_s: float = 3.0) -> NetworkReport:
        """Before joining: is the server reachable (the TURN-credential request), can the
        TURN relay be allocated on with those time-limited credentials, and the round trip
        and loss to it."""
        started = time.perf_counter()
        try:
            wire = await signaling_api.turn_credentials(self.transport)
        except ServerError:  # reachable, but it offers no TURN (503 turn_unavailable)
            server_ms = (time.perf_counter() - started) * 1000.0
            verdict, reason = network_verdict(server_ok=True, relay=None,
                                              relay_only=self.relay_only)
            return NetworkReport(verdict, True, server_ms, None, self.relay_only, reason)
        except SafeConsultError:
            verdict, reason = network_verdict(server_ok=False, relay=None,
                                              relay_only=self.relay_only)
            return NetworkReport(verdict, False, None, None, self.relay_only, reason)
        server_ms = (time.perf_counter() - started) * 1000.0
        relay = await probe_relay(TurnCredentials(wire.uris, wire.username, wire.credential,
                                                  wire.ttl_s), count=count, timeout_s=timeout_s)
        verdict, reason = network_verdict(server_ok=True, relay=relay,
                                          relay_only=self.relay_only)
        log.info("network test", extra={"event": "call_network_test", "state": verdict})
        return NetworkReport(verdict, True, server_ms, relay, self.relay_only, reason)

    async def _new_call(self, call_id: str, room_id: str) -> Call:
        ice = await self._ice()
        options = dataclasses.replace(self.options, ice=ice)
        room = room_id

        async def send(peer: Party, kind: str, payload: dict[str, Any]) -> None:
            try:
                await self._send_signal(self.transport, room, to_user_id=peer.user_id,
                                        to_device_id=peer.device_id, call_id=call_id,
                                        kind=kind, payload=payload)
            except SafeConsultError as exc:
                log.info("signal not sent", extra={"event": "call_signal_failed",
                                                   "reason_code": exc.__class__.__name__})

        call = Call(call_id, self.local, sign=self.device.identity.sign, key_for=self.key_for,
                    send=send, options=options, sink=self.sink, ice_source=self._ice,
                    video=self._video, audio=self._audio, frame_sink=self.frame_sink,
                    on_event=lambda what, link: self._on_link_event(call_id, what, link))
        player = playback.open_speaker(self.speaker, stream_factory=self._speaker_stream)
        if player is not None:  # no speaker: the call goes on without sound out
            self.players[call_id] = player
            call.taps.append(playback.audio_tap(player))
        self.calls[call_id] = call
        self.rooms[call_id] = room_id
        return call

    def _on_link_event(self, call_id: str, what: str, link: PeerLink) -> None:
        detail = link.refusal.reason if link.refusal is not None else ""
        if what == "connected":
            detail = link.code or ""  # the verification code both ends show
        self.event.emit(CallEvent(call_id, what, link.peer, detail))
        call = self.calls.get(call_id)
        admitted = self.admitted.get(call_id)
        if admitted is not None and call is not None:
            if what == "connected":  # (re)connected: told again who was let in meanwhile
                for party in admitted - {link.peer}:
                    self._spawn(self._tell_admitted(call, link.peer, party))
            elif what in ("ended", "refused", "lost"):
                admitted.discard(link.peer)
        player = self.players.get(call_id)
        if player is not None and what in ("ended", "refused", "lost"):
            player.remove(link.peer)  # its buffered sound goes with it
        if call is not None and not call.closed:
            if call.host == self.local:
                if what == "connected":  # a newcomer or a rebuilt link: everyone is told
                    self._send_roster(call)
                elif what in ("ended", "refused", "lost"):
                    roster = self.rosters.get(call_id, [])
                    if link.peer in roster:
                        roster.remove(link.peer)
                        self._send_roster(call)
            elif what in ("ended", "lost") and link.peer == call.host:
                self._hand_over(call)
        if what in ("ended", "refused", "lost") and call is not None and all(
                other.state in (LinkState.CLOSED, LinkState.REFUSED)
                for other in call.links.values()):
            self._spawn(self.hangup(call_id))  # nobody left: stop capture, drop the call

    async def room_devices(self, room_id: str) -> list[Party]:
        """Every trusted device of every other joined member of the room."""
        members = [m for m in self.chat.members(room_id) if m != self.local.user_id]
        await self._know(members)
        peers = []
        for user_id in members:
            for device_id in sorted(self.chat.machine.devices(user_id)):
                if self.key_for(user_id, device_id):
                    peers.append(Party(user_id, device_id))
        return peers

    async def place_call(self, room_id: str, peers: list[Party] | None = None) -> Call:
        peers = peers if peers is not None else await self.room_devices(room_id)
        if not peers:
            raise SafeConsultError("no trusted device to call in this consult")
        call = await self._new_call(new_call_id(), room_id)
        call.allowed = set()  # we host: newcomers knock and are admitted (we offer to them)
        self.rosters[call.call_id] = list(dict.fromkeys([self.local, *peers]))
        for peer in peers:  # all links first, so every offer lists every participant
            call.link(peer, offerer=True)
        if self.announce:
            self._spawn(self._announce(room_id, call.call_id, "active"))
        await asyncio.gather(*(call.connect(peer, offerer=True) for peer in peers))
        return call

    async def _on_signal(self, signal: signaling_api.IncomingSignal) -> None:
        sender = Party(signal.sender, signal.sender_device)
        if signal.call_id in self._early:
            self._early[signal.call_id].append(signal)
            return
        call = self.calls.get(signal.call_id)
        if call is not None:
            if self.rooms.get(signal.call_id) == signal.room_id:
                if signal.kind == "invite" and signal.payload.get("knock") is True:
                    self._on_knock(call, sender)
                elif (signal.kind == "hangup" and sender not in call.links
                      and sender in self.waiting.get(call.call_id, {})):
                    self._unwait(call.call_id, sender)  # gave up waiting
                else:
                    await call.handle(sender, signal.kind, signal.payload)
            return
        join = self.joining.get(signal.call_id)
        if join is not None and join.room_id == signal.room_id:
            await self._on_join_signal(join, sender, signal)
            return
        if signal.kind == "invite" and signal.payload.get("knock") is True:
            # A knock on a call we do not (or no longer) host: say so, so nobody waits.
            if any(c.call_id == signal.call_id for c in self.finished):
                self._spawn(self._signal(signal.room_id, sender, signal.call_id, "reject",
                                         {"reason": "ended"}))
            return
        if signal.kind == "invite" and signal.payload.get("invited") is True:
            self._on_invited(signal, sender)
            return
        if signal.kind != "offer":
            pending = self.pending.get(signal.call_id)
            if pending is not None and signal.kind == "hangup" and sender == pending.caller:
                del self.pending[signal.call_id]
            return
        now = time.monotonic()
        for stale in [k for k, v in self.pending.items() if now - v.received > RING_S]:
            del self.pending[stale]  # rang out
        pending = self.pending.get(signal.call_id)
        if pending is None:
            pending = self.pending[signal.call_id] = IncomingCall(
                signal.call_id, signal.room_id, sender, received=now)
            pending.offers.append((sender, signal.kind, signal.payload))
            if self.auto_accept:
                await self.accept(signal.call_id)
            else:
                self.incoming.emit(pending)
        else:
            pending.offers.append((sender, signal.kind, signal.payload))

    async def accept(self, call_id: str) -> Call:
        pending = self.pending.pop(call_id, None)
        if pending is None or time.monotonic() - pending.received > RING_S:
            raise CallGone(f"no incoming call {call_id}")
        if pending.invited:
            self.pending[call_id] = pending
            raise CallGone("an invitation into a running call is answered with accept_invite")
        self._early[call_id] = []
        try:
            call = await self._accept(pending)
        finally:
            early = self._early.pop(call_id, [])
        for signal in early:
            await self._on_signal(signal)
        return call

    async def _accept(self, pending: IncomingCall) -> Call:
        await self._know([pending.caller.user_id])
        call = await self._new_call(pending.call_id, pending.room_id)
        call.host = pending.caller
        # Offers are answered from the host and from those its offer lists; anyone else
        # waits until the host says it admitted them (a ``call.admit`` control message).
        call.allowed = {pending.caller}
        call.control_handlers.append(lambda peer, message: self._on_control(call, peer, message))
        others: list[Party] = []
        for sender, _kind, payload in pending.offers:
            participants = payload.get("participants")
            if sender == pending.caller:  # the host's view, oldest first, until it says more
                order = _parties(participants)
                if order is not None:
                    self.rosters[call.call_id] = list(dict.fromkeys(
                        [pending.caller, *order, self.local]))
            if isinstance(participants, list):
                for item in participants:
                    if (isinstance(item, list) and len(item) == 2
                            and all(isinstance(x, str) for x in item)):
                        party = Party(item[0], item[1])
                        if party not in (self.local, pending.caller):
                            others.append(party)
                            if sender == pending.caller:
                                call.allowed.add(party)
        # Mesh: between two callees the smaller device id offers.
        await self._know(sorted({p.user_id for p in others}
                                | {sender.user_id for sender, _k, _p in pending.offers}))
        for sender, kind, payload in pending.offers:
            await call.handle(sender, kind, payload)
        for party in dict.fromkeys(others):
            await call.connect(party, offerer=self.local.device_id < party.device_id)
        return call

    # -- screen sharing --------------------------------------------------------------------

    def share_screen(self, call_id: str, track: Any | None) -> None:
        """Send ``track`` (an ``app.rtc.screen_track.ScreenShareTrack``) instead of the camera
        in ``call_id``, or the camera again for None; audited as screen.share.start/stop."""
        call = self.calls.get(call_id)
        if call is None:
            raise CallGone(f"no call {call_id}")
        if track is not None:
            if not call.sharing:  # recorded first: a share that cannot be audited won't start
                self._audit_share("screen.share.start", call_id)
            call.send_video(track)
        elif call.sharing:  # stopping always stops; then it is recorded
            call.send_video(None)
            self._audit_share("screen.share.stop", call_id)

    def _audit_share(self, action: str, call_id: str) -> None:
        if self._session.audit is not None:
            self._session.audit.record(action, object_type="call", object_id=call_id,
                                       detail={"room_id": self.rooms.get(call_id, "")})

    async def reject(self, call_id: str) -> None:
        pending = self.pending.pop(call_id, None)
        if pending is None:
            return
        with contextlib.suppress(SafeConsultError):
            await self._send_signal(self.transport, pending.room_id,
                                    to_user_id=pending.caller.user_id,
                                    to_device_id=pending.caller.device_id, call_id=call_id,
                                    kind="reject", payload={})

    async def hangup(self, call_id: str) -> None:
        call = self.calls.get(call_id)
        if call is not None and call.sharing:  # the share ends with the call
            with contextlib.suppress(SafeConsultError):  # signed out: no log to write to
                self._audit_share("screen.share.stop", call_id)
        call = self.calls.pop(call_id, None)
        room_id = self.rooms.pop(call_id, None)
        self._dropping.discard((call_id, self.local))
        self.admitted.pop(call_id, None)
        self.rosters.pop(call_id, None)
        player = self.players.pop(call_id, None)
        if player is not None:
            player.close()
        if call is not None:
            # Nobody is left waiting in vain: the call ended, or (others go on without us,
            # the host) they knock on the next host, whom the room will be told of.
            goes_on = call.host == self.local and sum(  # two or more stay: it goes on
                link.state not in (LinkState.CLOSED, LinkState.REFUSED)
                for link in call.links.values()) >= 2
            reason = "host_left" if goes_on else "ended"
            for party in self.waiting.pop(call_id, {}):
                with contextlib.suppress(SafeConsultError):
                    await self._signal(room_id or "", party, call_id, "reject",
                                       {"reason": reason})
            if self.announce and call.host == self.local and room_id:
                self._spawn(self._announce(room_id, call_id, "ended"))
            await call.hangup()
            self.finished.append(call)  # for a call summary (stats, refusals), newest last
            del self.finished[:-20]

    # -- waiting room and invitations (docs/calls.md) ----------------------------------------

    async def _signal(self, room_id: str, peer: Party, call_id: str, kind: str,
                      payload: dict[str, Any]) -> None:
        try:
            await self._send_signal(self.transport, room_id, to_user_id=peer.user_id,
                                    to_device_id=peer.device_id, call_id=call_id, kind=kind,
                                    payload=payload)
        except SafeConsultError as exc:
            log.info("signal not sent", extra={"event": "call_signal_failed",
                                               "reason_code": exc.__class__.__name__})

    # host side

    def _on_knock(self, call: Call, sender: Party) -> None:
        """A device asks to join a call we host: it waits until admitted or denied."""
        if call.host != self.local:
            return  # only the host keeps a waiting room
        existing = call.links.get(sender)
        if existing is not None and existing.state not in (LinkState.CLOSED, LinkState.REFUSED):
            return  # already in the call
        room_id = self.rooms.get(call.call_id, "")
        if self._unfit(sender, self._left(room_id)):
            log.info("knock from an untrusted device or non-member ignored",
                     extra={"event": "call_knock_untrusted"})
            return
        room = self.waiting.setdefault(call.call_id, {})
        if sender not in room and len(room) >= MAX_WAITING:
            return
        room[sender] = Waiting(call.call_id, sender, time.monotonic())
        self.waiting_changed.emit(call.call_id)

    def waiting_for(self, call_id: str) -> list[Waiting]:
        """Who is in the waiting room of ``call_id`` (we host it), oldest first."""
        now = time.monotonic()
        room = self.waiting.get(call_id, {})
        for party in [p for p, w in room.items() if now - w.since > WAIT_S]:
            del room[party]
        return sorted(room.values(), key=lambda w: w.since)

    def _unwait(self, call_id: str, party: Party) -> Waiting | None:
        gone = self.waiting.get(call_id, {}).pop(party, None)
        if gone is not None:
            self.waiting_changed.emit(call_id)
        return gone

    async def admit(self, call_id: str, party: Party) -> PeerLink:
        """Let a waiting device in: we offer to it (listing everyone in the call), and tell
        every other participant, over its end-to-end control channel, to connect to it."""
        call = self.calls.get(call_id)
        if call is None:
            raise CallGone(f"no call {call_id}")
        if party not in self.waiting.get(call_id, {}):
            raise CallGone("that device is no longer waiting",
                           user_message="They are no longer waiting to join.")
        # Recorded first: an admission that cannot be audited does not happen.
        self._audit_admission("call.admit", call_id, party)
        self._unwait(call_id, party)
        old = call.links.get(party)
        if old is not None and old.state in (LinkState.CLOSED, LinkState.REFUSED):
            del call.links[party]  # it left earlier and comes back: a fresh link
        self.admitted.setdefault(call_id, set()).add(party)
        roster = self.rosters.setdefault(call_id, [self.local])
        if party in roster:
            roster.remove(party)
        roster.append(party)  # the newest last
        for peer, link in list(call.links.items()):
            if peer != party and link.state not in (LinkState.CLOSED, LinkState.REFUSED):
                self._spawn(self._tell_admitted(call, peer, party))
        return await call.connect(party, offerer=True)

    async def _tell_admitted(self, call: Call, peer: Party, party: Party,
                             wait_s: float = 20.0) -> bool:
        """Send ``call.admit`` for ``party`` on ``peer``'s control channel, waiting for it to
        open (a link still connecting); a link that connects later is told then as well."""
        deadline = time.monotonic() + wait_s
        while not call.closed:
            link = call.links.get(peer)
            if link is None or link.state in (LinkState.CLOSED, LinkState.REFUSED):
                return False
            if link.send_control({"t": ADMIT, "party": [party.user_id, party.device_id]}):
                return True
            if time.monotonic() > deadline:
                return False
            await asyncio.sleep(0.1)
        return False

    async def deny(self, call_id: str, party: Party) -> None:
        """Turn a waiting device away; it is told plainly."""
        if party not in self.waiting.get(call_id, {}):
            return
        self._audit_admission("call.deny", call_id, party)
        self._unwait(call_id, party)
        await self._signal(self.rooms.get(call_id, ""), party, call_id, "reject",
                           {"reason": "denied"})

    async def invite(self, call_id: str, user_id: str) -> int:
        """Ring every trusted device of room member ``user_id`` with an invitation into our
        running call; accepting it knocks (the invitee then waits to be admitted like anyone
        who joins). Returns how many devices were invited."""
        call = self.calls.get(call_id)
        room_id = self.rooms.get(call_id)
        if call is None or room_id is None:
            raise CallGone(f"no call {call_id}")
        if call.host != self.local:
            raise SafeConsultError("only the host of the call can invite",
                                   user_message="Only the host of the call can invite.")
        if user_id not in self.chat.members(room_id) or user_id == self.local.user_id:
            raise SafeConsultError("only another member of this consult can be invited",
                                   user_message="Only another member of this consult can be "
                                                "invited.")
        await self._know([user_id])
        devices = [Party(user_id, d) for d in sorted(self.chat.machine.devices(user_id))
                   if self.key_for(user_id, d)]
        if not devices:
            raise SafeConsultError("no trusted device to invite", user_message=(
                "That member has no device this workstation trusts, so they cannot be "
                "invited."))
        self._audit_admission("call.invite", call_id, Party(user_id, ""),
                              devices=len(devices))
        for party in devices:
            await self._signal(room_id, party, call_id, "invite", {"invited": True})
        return len(devices)

    def _audit_admission(self, action: str, call_id: str, party: Party, **extra: Any) -> None:
        """``call.admit`` / ``call.deny`` / ``call.invite`` on the host, ``call.drop`` on any
        device that removed a party (detail ``reason``): object the call, detail the other
        party's identifiers (user, device where one is meant) and the room."""
        if self._session.audit is None:
            return
        detail: dict[str, Any] = {"user_id": party.user_id,
                                  "room_id": self.rooms.get(call_id, "")}
        if party.device_id:
            detail["device_id"] = party.device_id
        self._session.audit.record(action, object_type="call", object_id=call_id,
                                   detail=detail | extra)

    # host hand-over

    def _send_roster(self, call: Call, to: list[Party] | None = None) -> None:
        """Tell participants (all, or ``to``) who is in the call, oldest first; a link whose
        control channel is not open yet is told when it connects."""
        roster = [p for p in self.rosters.get(call.call_id, [self.local])
                  if p == self.local or (p in call.links and call.links[p].state
                                         not in (LinkState.CLOSED, LinkState.REFUSED))]
        self.rosters[call.call_id] = roster
        message = {"t": ROSTER, "order": [[p.user_id, p.device_id] for p in roster]}
        for peer in to if to is not None else list(call.links):
            link = call.links.get(peer)
            if link is not None and link.state not in (LinkState.CLOSED, LinkState.REFUSED):
                link.send_control(message)

    def _hand_over(self, call: Call) -> None:
        """The host left while the call goes on: the longest-present device still here (by
        the host's last roster) hosts it now. Every remaining device decides the same from
        the same roster; nothing the relay says enters the choice."""
        old = call.host
        live = {self.local} | {p for p, link in call.links.items()
                               if link.state not in (LinkState.CLOSED, LinkState.REFUSED)}
        roster = [p for p in self.rosters.get(call.call_id, []) if p != old]
        candidates = [p for p in roster if p in live]
        if not candidates or len(live) < 2:
            return  # nobody else left: the call ends by itself, no host needed
        new = candidates[0]
        call.host = new
        self.rosters[call.call_id] = roster
        log.info("call host handed over", extra={"event": "call_host_handover",
                                                 "state": "us" if new == self.local
                                                 else "other"})
        if new == self.local:
            call.allowed = set()  # we host now: newcomers knock and are admitted
            call.held.clear()
            self.admitted[call.call_id] = set()
            message = {"t": HOST, "host": [new.user_id, new.device_id]}
            for link in call.links.values():
                if link.state not in (LinkState.CLOSED, LinkState.REFUSED):
                    link.send_control(message)
            self._send_roster(call)
            room_id = self.rooms.get(call.call_id)
            if self.announce and room_id:
                self._spawn(self._announce(room_id, call.call_id, "active"))
        elif call.allowed is not None:
            call.allowed.add(new)
        self.host_changed.emit(call.call_id)

    # participant side

    def _on_control(self, call: Call, peer: Party, message: dict[str, Any]) -> None:
        """The host admitted someone: accept its offer, and offer to it where we should.
        The host's roster: kept for a hand-over. A new host's claim: checked."""
        if call.closed:
            return
        kind = message.get("t")
        if kind == ROSTER and peer == call.host:
            order = _parties(message.get("order"))
            if order is not None and order and order[0] == peer:
                self.rosters[call.call_id] = order
            return
        if kind == HOST:
            claim = _parties([message.get("host")])
            if claim is None or claim[0] != peer or peer != call.host:
                log.info("host claim not matching our own choice ignored",
                         extra={"event": "call_host_claim_ignored"})
            return
        if kind != ADMIT or peer != call.host:
            return
        item = message.get("party")
        if not (isinstance(item, list) and len(item) == 2
                and all(isinstance(x, str) for x in item)):
            return
        party = Party(item[0], item[1])
        if party == self.local:
            return
        self._spawn(self._admitted(call, party))

    async def _admitted(self, call: Call, party: Party) -> None:
        await self._know([party.user_id])
        if self._unfit(party, self._left(self.rooms.get(call.call_id, ""))):
            log.info("admission of a device we may not call ignored",
                     extra={"event": "call_admit_unfit"})
            return
        old = call.links.get(party)
        if old is not None and old.state not in (LinkState.CLOSED, LinkState.REFUSED):
            return  # told again (the host repeats it on every reconnect): already linked
        if old is not None:
            del call.links[party]  # left earlier and let in again: a fresh link
        await call.allow(party)
        if self.local.device_id < party.device_id:  # between two non-hosts the smaller offers
            await call.connect(party, offerer=True)

    def _on_invited(self, signal: signaling_api.IncomingSignal, sender: Party) -> None:
        if self.key_for(sender.user_id, sender.device_id) is None:
            return  # an invitation from a device we do not trust is not shown
        if signal.call_id in self.pending or signal.call_id in self.calls or (
                signal.call_id in self.joining):
            return
        pending = self.pending[signal.call_id] = IncomingCall(
            signal.call_id, signal.room_id, sender, received=time.monotonic(), invited=True)
        if self.auto_accept:
            self._spawn(self.accept_invite(signal.call_id))
        else:
            self.incoming.emit(pending)

    async def accept_invite(self, call_id: str) -> JoinRequest:
        """Answer an invitation into a running call: knock, and wait to be admitted."""
        pending = self.pending.pop(call_id, None)
        if pending is None or not pending.invited or time.monotonic() - pending.received > RING_S:
            raise CallGone(f"no invitation {call_id}")
        return await self.join(pending.room_id, call_id, pending.caller)

    async def join(self, room_id: str, call_id: str | None = None,
                   host: Party | None = None) -> JoinRequest:
        """Ask the host of the call running in ``room_id`` to let us in (its waiting room).
        ``join_changed`` then reports admitted (with the call) or denied."""
        if call_id is None or host is None:
            active = self.active.get(room_id)
            if active is None:
                raise CallGone("no call is running in this consult",
                               user_message="No video consult is running in this consult.")
            call_id, host = active.call_id, active.host
        if call_id in self.calls:
            raise SafeConsultError("you are already in this call",
                                   user_message="You are already in this call.")
        await self._know([host.user_id])
        if self.key_for(host.user_id, host.device_id) is None:
            raise SafeConsultError("the host's device is not one we trust", user_message=(
                "The host's device is not one this workstation trusts, so you cannot join."))
        request = self.joining[call_id] = JoinRequest(call_id, room_id, host,
                                                      asked=time.monotonic())
        await self._send_signal(self.transport, room_id, to_user_id=host.user_id,
                                to_device_id=host.device_id, call_id=call_id, kind="invite",
                                payload={"knock": True})
        self.join_changed.emit(request)
        return request

    async def cancel_join(self, call_id: str) -> None:
        request = self.joining.pop(call_id, None)
        if request is None:
            return
        request.state = "cancelled"
        self.join_changed.emit(request)
        await self._signal(request.room_id, request.host, call_id, "hangup", {})

    async def _on_join_signal(self, join: JoinRequest, sender: Party,
                              signal: signaling_api.IncomingSignal) -> None:
        if signal.kind == "reject" and sender == join.host:
            if signal.payload.get("reason") == "host_left":
                join.host_left = True  # still waiting: for the next host's announcement
                self._reknock(join)
                return
            del self.joining[join.call_id]
            join.state = "denied" if signal.payload.get("reason") == "denied" else "ended"
            self.join_changed.emit(join)
            return
        if signal.kind != "offer":
            return
        now = time.monotonic()
        pending = self.pending.get(join.call_id)
        if pending is None:
            pending = self.pending[join.call_id] = IncomingCall(
                join.call_id, join.room_id, join.host, received=now)
        pending.offers.append((sender, signal.kind, signal.payload))
        if sender != join.host:
            return  # another participant was quicker than the host: answered after it
        pending.offers.sort(key=lambda o: o[0] != join.host)  # the host's offer first
        del self.joining[join.call_id]
        try:
            join.call = await self.accept(join.call_id)
            join.state = "admitted"
        except SafeConsultError:
            join.state = "failed"
        self.join_changed.emit(join)

    def _reknock(self, join: JoinRequest) -> None:
        """The host we waited for left and the call goes on: once the room has been told who
        hosts it now (its ``sc.call``, Megolm-signed by that device), knock there."""
        active = self.active.get(join.room_id)
        if (not join.host_left or active is None or active.call_id != join.call_id
                or active.host == join.host):
            return
        join.host_left = False
        self._spawn(self._knock_again(join, active.host))

    async def _knock_again(self, join: JoinRequest, host: Party) -> None:
        await self._know([host.user_id])
        if self.key_for(host.user_id, host.device_id) is None or join.state != "waiting":
            return  # not a device we trust: we do not knock there
        join.host = host
        await self._signal(join.room_id, host, join.call_id, "invite", {"knock": True})
        self.join_changed.emit(join)

    # the room's view of running calls

    async def _announce(self, room_id: str, call_id: str, state: str) -> None:
        try:
            await self.chat.send_room_event(room_id, CALL_EVENT,
                                            {"call_id": call_id, "state": state})
        except (SafeConsultError, ValueError) as exc:
            log.info("call not announced", extra={"event": "call_announce_failed",
                                                   "reason_code": exc.__class__.__name__})

    def _on_room_event(self, event: Any) -> None:
        if event.event_type != CALL_EVENT:
            return
        content = event.content.reveal()
        call_id = content.get("call_id") if isinstance(content, dict) else None
        state = content.get("state") if isinstance(content, dict) else None
        if not (isinstance(call_id, str) and signaling_api.ID_PATTERN.match(call_id)
                and state in ("active", "ended")):
            return
        host = Party(event.sender, event.sender_device)  # the Megolm sender: authenticated
        current = self.active.get(event.room_id)
        if state == "active":
            self.active[event.room_id] = ActiveCall(event.room_id, call_id, host)
            join = self.joining.get(call_id)
            if join is not None and join.room_id == event.room_id:
                self._reknock(join)
        elif current is not None and current.call_id == call_id and current.host == host:
            del self.active[event.room_id]
        else:
            return
        self.active_changed.emit(event.room_id)

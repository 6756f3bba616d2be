"""A call: one :class:`PeerLink` (one ``RTCPeerConnection``) per remote device, a full mesh
for three or more parties. Qt-free and transport-free: signals go out through an injected
``send(peer, kind, payload)`` coroutine and come in through :meth:`Call.handle`.

Policy (docs/calls.md):

* No remote description is applied before its signature verifies against the key our own
  E2EE directory view holds for the sending device (:mod:`app.rtc.signing`). A refusal closes
  that link: no ICE, no DTLS, no media with it.
* Per pair, one side offers (the caller; between two callees the smaller device id), so a
  rebuild never races another offer.
* aiortc has no ICE restart. When a link fails (connection state ``failed``, or no remote
  video for ``stall_s`` once media had flowed, or no connection within ``connect_timeout_s``)
  the offerer rebuilds it: a new peer connection, a new generation, a freshly signed offer.
  The answerer asks for a rebuild when it notices first. No user action is needed.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from aiortc import RTCPeerConnection, RTCSessionDescription
from aiortc.contrib.media import MediaRelay
from aiortc.jitterbuffer import JitterBuffer, JitterFrame
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack
from aiortc.rtcrtpreceiver import RTCRtpReceiver

from app.rtc.ice import IcePolicy, configuration
from app.rtc.signing import (
    CallRefused,
    KeyFor,
    Party,
    Sign,
    StaleDescription,
    sign_description,
    verification_code,
    verify_description,
)
from app.rtc.tracks import (
    GatedTrack,
    SyntheticVideoTrack,
    ToneAudioTrack,
    audio_level,
    frame_to_rgb,
    now_ms,
    read_frame_stamp,
)

log = logging.getLogger(__name__)

SendSignal = Callable[[Party, str, dict[str, Any]], Awaitable[None]]
FrameSink = Callable[[Party, Any], None]  # (peer, H x W x 3 uint8 RGB ndarray) per video frame
# (peer, decoded av.VideoFrame): for a view that converts off the event loop's thread
RawFrameSink = Callable[[Party, Any], None]
RefreshIce = Callable[[], Awaitable[IcePolicy]]
# (peer, message) from the peer's control data channel: DTLS, end to end between the two
# devices whose fingerprints were signed by their identity keys (e.g. recording consent)
ControlHandler = Callable[[Party, dict[str, Any]], None]
MediaTap = Callable[[Party, Any], None]  # (peer, decoded av frame, video or audio)
CONTROL_LABEL = "sc-control"
MAX_HELD = 16  # offers held for the host's admission, per call


class PromptJitterBuffer(JitterBuffer):
    """aiortc's video jitter buffer, but a frame goes to the decoder as soon as its last
    packet (RTP marker bit, set by the sender on a frame's last packet) is in and every packet
    before it is contiguous from the buffer's origin -- stock aiortc waits for the first packet
    of the *next* frame, about one frame interval of receive delay. Anything else (a gap, a
    lost marker) falls back to the stock rule."""

    def add(self, packet: Any) -> tuple[bool, JitterFrame | None]:
        pli_flag, frame = super().add(packet)
        if frame is None:  # the marker may be in already and a late packet fill the gap
            frame = self._complete_frame()
        return pli_flag, frame

    def _complete_frame(self) -> JitterFrame | None:
        if self._origin is None:
            return None
        packets: list[Any] = []
        for count in range(self.capacity):
            packet = self._packets[(self._origin + count) % self.capacity]
            if packet is None or (packets and packet.timestamp != packets[0].timestamp):
                return None
            packets.append(packet)
            if packet.marker:
                self.remove(count + 1)
                return JitterFrame(data=b"".join(p._data for p in packets),
                                   timestamp=packets[0].timestamp)
        return None


def prompt_video(receiver: RTCRtpReceiver) -> None:
    """Give a video receiver the :class:`PromptJitterBuffer` (before its media flows)."""
    receiver._RTCRtpReceiver__jitter_buffer = PromptJitterBuffer(  # type: ignore[attr-defined]
        capacity=512, is_video=True)
TrackFactory = Callable[[], MediaStreamTrack]


class LinkState(StrEnum):
    NEW = "new"
    CONNECTING = "connecting"
    CONNECTED = "connected"
    REBUILDING = "rebuilding"
    REFUSED = "refused"
    CLOSED = "closed"


@dataclass
class MediaStats:
    """What arrived from one peer (across rebuilds)."""

    video_frames: int = 0
    stamped_frames: int = 0
    audio_frames: int = 0
    first_frame_at: float | None = None  # time.monotonic()
    last_frame_at: float | None = None
    latencies_ms: list[int] = field(default_factory=list)
    tags: set[int] = field(default_factory=set)
    last_seq: int | None = None
    audio_level: float = 0.0  # RMS of the last remote audio frame, 0..1 (active speaker)
    audio_level_at: float | None = None  # time.monotonic()


@dataclass
class CallOptions:
    ice: IcePolicy = field(default_factory=IcePolicy)
    video_tag: int = 0
    audio: bool = True
    stall_s: float = 4.0
    connect_timeout_s: float = 10.0
    max_backoff_s: float = 8.0
    give_up_s: float = 120.0  # no connection for this long: the link ends ("lost")
    prompt_video: bool = True  # decode a video frame once its last packet is in: PromptJitterBuffer


class PeerLink:
    def __init__(self, call: Call, peer: Party, *, offerer: bool) -> None:
        self.call = call
        self.peer = peer
        self.offerer = offerer
        self.pc: RTCPeerConnection | None = None
        self.generation = 0
        self.state = LinkState.NEW
        self.refusal: CallRefused | None = None
        self.code: str | None = None  # the short verification code, once verified
        self.local_prints: tuple[str, ...] = ()
        self.remote_prints: tuple[str, ...] = ()
        self.stats = MediaStats()
        self.connected = asyncio.Event()
        self.rebuilds = 0
        self._rebuilt_from = 0
        self.rejected_messages = 0
        self.setup_started: float | None = None
        self.connected_at: float | None = None
        self.attempt_started: float | None = None  # the current offer/answer round
        self._tasks: set[asyncio.Task] = set()
        self._watchdog: asyncio.Task | None = None
        self._lock = asyncio.Lock()
        self._closing = False
        self.control: Any = None  # the RTCDataChannel of the current generation

    # -- life cycle ------------------------------------------------------------------------

    def _spawn(self, coro) -> asyncio.Task:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def start(self) -> None:
        self.setup_started = time.monotonic()
        if self._watchdog is None:
            self._watchdog = self._spawn(self._watch())
        if self.offerer:
            await self._offer()

    async def close(self, *, state: LinkState = LinkState.CLOSED) -> None:
        self._closing = True
        if self.state is not LinkState.REFUSED:  # a refusal stays on record
            self.state = state
        current = asyncio.current_task()
        for task in list(self._tasks):
            if task is not current:
                task.cancel()
        await self._drop_pc()

    async def _drop_pc(self) -> None:
        pc, self.pc = self.pc, None
        if pc is not None:
            with contextlib.suppress(Exception):
                await pc.close()

    def _new_pc(self, generation: int) -> RTCPeerConnection:
        pc = RTCPeerConnection(configuration(self.call.options.ice))
        for track in self.call.local_tracks():
            pc.addTrack(track)
        self.control = None
        if self.offerer:
            self._attach_control(pc.createDataChannel(CONTROL_LABEL), generation)

        @pc.on("datachannel")
        def on_channel(channel: Any) -> None:
            if channel.label == CONTROL_LABEL and pc is self.pc:
                self._attach_control(channel, generation)

        @pc.on("track")
        def on_track(track: MediaStreamTrack) -> None:
            if track.kind == "video" and self.call.options.prompt_video:
                for transceiver in pc.getTransceivers():
                    if transceiver.receiver.track is track:
                        prompt_video(transceiver.receiver)
            self._spawn(self._consume(track, generation))

        @pc.on("connectionstatechange")
        def on_state() -> None:
            if pc is not self.pc or self._closing:
                return
            state = pc.connectionState
            if state == "connected":
                self.state = LinkState.CONNECTED
                self.connected_at = time.monotonic()
                self.connected.set()
                self.call.notify("connected", self)
            elif state in ("failed", "closed"):
                self._spawn(self._failed(f"connection {state}", generation))

        return pc

    def _attach_control(self, channel: Any, generation: int) -> None:
        self.control = channel

        @channel.on("message")
        def on_message(message: Any) -> None:
            if generation != self.generation or not isinstance(message, str):
                return
            try:
                data = json.loads(message)
            except ValueError:
                return
            if isinstance(data, dict):
                self.call.on_control(self.peer, data)

    def send_control(self, message: dict[str, Any]) -> bool:
        """Send ``message`` (JSON) on the control channel; False if it is not open."""
        channel = self.control
        if channel is None or channel.readyState != "open":
            return False
        channel.send(json.dumps(message, separators=(",", ":")))
        return True

    # -- offer / answer --------------------------------------------------------------------

    async def _offer(self) -> None:
        async with self._lock:
            if self._closing:
                return
            await self._drop_pc()
            if self._closing:  # closed while the old connection closed: make no new one
                return
            self.generation += 1
            self.connected.clear()
            self.state = LinkState.CONNECTING
            pc = self.pc = self._new_pc(self.generation)
            await pc.setLocalDescription(await pc.createOffer())
            signed = self._sign("offer", pc.localDescription.sdp, self.generation)
            payload = signed.to_payload()
            payload["participants"] = [[p.user_id, p.device_id]
                                       for p in self.call.participants()]
            self.attempt_started = time.monotonic()
        await self.call.send(self.peer, "offer", payload)

    def _sign(self, kind: str, sdp: str, generation: int):
        signed = sign_description(
            self.call.sign, call_id=self.call.call_id, kind=kind, sdp_type=kind, sdp=sdp,
            sender=self.call.local, recipient=self.peer, generation=generation)
        self.local_prints = signed.fingerprints
        return signed

    def _verify(self, kind: str, payload: Any, min_generation: int):
        return verify_description(
            payload, key_for=self.call.key_for, call_id=self.call.call_id, kind=kind,
            sender=self.peer, recipient=self.call.local, min_generation=min_generation)

    async def on_offer(self, payload: Any) -> None:
        if self.offerer:
            return  # we offer on this pair; an offer from the peer is ignored (no glare)
        async with self._lock:
            if self._closing:
                return
            try:
                described = self._verify("offer", payload, self.generation + 1)
            except StaleDescription:
                # A replayed (or very late) offer: ignored, so a relay replaying old
                # signals cannot tear down a working link; nothing is applied from it.
                log.info("stale offer ignored", extra={"event": "call_stale_offer"})
                return
            except CallRefused as exc:
                await self._refuse(exc)
                return
            await self._drop_pc()
            if self._closing:  # closed meanwhile (by us, or the call dropped this peer)
                return
            self.generation = described.generation
            self.connected.clear()
            self.state = LinkState.CONNECTING
            self.attempt_started = time.monotonic()
            pc = self.pc = self._new_pc(self.generation)
            await pc.setRemoteDescription(RTCSessionDescription(described.sdp, "offer"))
            await pc.setLocalDescription(await pc.createAnswer())
            signed = self._sign("answer", pc.localDescription.sdp, self.generation)
            self.remote_prints = described.fingerprints
            self.code = verification_code(self.call.call_id, self.local_prints,
                                          self.remote_prints)
        await self.call.send(self.peer, "answer", signed.to_payload())

    async def on_answer(self, payload: Any) -> None:
        if not self.offerer:
            return
        async with self._lock:
            if self._closing or self.pc is None:
                return
            if isinstance(payload, dict) and payload.get("generation") != self.generation:
                return  # the answer to an offer we have since replaced
            try:
                described = self._verify("answer", payload, self.generation)
            except StaleDescription:
                log.info("stale answer ignored", extra={"event": "call_stale_answer"})
                return
            except CallRefused as exc:
                await self._refuse(exc)
                return
            if self.pc.signalingState != "have-local-offer":
                return
            await self.pc.setRemoteDescription(RTCSessionDescription(described.sdp, "answer"))
            self.remote_prints = described.fingerprints
            self.code = verification_code(self.call.call_id, self.local_prints,
                                          self.remote_prints)

    async def _refuse(self, exc: CallRefused) -> None:
        log.warning("call description refused", extra={"event": "call_refused",
                                                       "reason_code": exc.reason})
        if self.remote_prints:
            # This link was verified before: a forged or bent message is dropped and
            # reported, and the verified connection (or its pending rebuild) stays as it
            # is -- a relay cannot turn one bad signal into a hang-up.
            self.rejected_messages += 1
            self.call.notify("tampered", self)
            return
        self.refusal = exc
        await self.close(state=LinkState.REFUSED)
        self.call.notify("refused", self)

    # -- recovery --------------------------------------------------------------------------

    async def _failed(self, why: str, generation: int) -> None:
        if self._closing or generation != self.generation:
            return
        self.state = LinkState.REBUILDING
        self.connected.clear()
        self.attempt_started = time.monotonic()  # the watchdog times the rebuild from now
        log.info("call link lost", extra={"event": "call_link_lost", "state": why})
        self.call.notify("rebuilding", self)
        if self.offerer:
            await self._rebuild(generation)
        else:
            await self.call.send(self.peer, "invite", {"rebuild": generation})

    async def on_rebuild_request(self, payload: Any) -> None:
        if not self.offerer or not isinstance(payload, dict):
            return
        if payload.get("rebuild") == self.generation and not self._closing:
            await self._rebuild(self.generation)

    async def _rebuild(self, generation: int) -> None:
        # Once per failed generation, however many detectors (state, stall, timeout, the
        # peer's request) report it.
        if generation != self.generation or self._rebuilt_from == generation:
            return
        self._rebuilt_from = generation
        self.rebuilds += 1
        await self.call.refresh_ice()  # TURN credentials are short-lived: fresh ones
        await self._offer()

    async def _watch(self) -> None:
        """Rebuild when media stalls or a connection attempt takes too long."""
        options = self.call.options
        backoff = 1.0
        while not self._closing:
            await asyncio.sleep(0.25)
            now = time.monotonic()
            generation = self.generation
            if self.state is LinkState.CONNECTED:
                backoff = 1.0
                last = self.stats.last_frame_at
                since = max(last or 0.0, self.connected_at or 0.0)
                if now - since > options.stall_s:
                    await self._failed("media stalled", generation)
            elif self.state in (LinkState.CONNECTING, LinkState.REBUILDING):
                since = self.connected_at or self.setup_started or now
                if now - max(since, self.stats.last_frame_at or 0.0) > options.give_up_s:
                    log.info("call link given up", extra={"event": "call_link_given_up"})
                    await self.close()
                    self.call.notify("lost", self)
                    return
                started = self.attempt_started
                if started is not None and now - started > options.connect_timeout_s * backoff:
                    backoff = min(backoff * 2, options.max_backoff_s)
                    self.attempt_started = now
                    await self._failed("connect timeout", generation)

    # -- media -----------------------------------------------------------------------------

    async def _consume(self, track: MediaStreamTrack, generation: int) -> None:
        stats = self.stats
        while True:
            try:
                frame = await track.recv()
            except MediaStreamError:
                return
            if generation != self.generation:
                return
            if track.kind == "video":
                now = time.monotonic()
                stats.video_frames += 1
                if stats.first_frame_at is None:
                    stats.first_frame_at = now
                stats.last_frame_at = now
                stamp = read_frame_stamp(frame)
                if stamp is not None:
                    stats.stamped_frames += 1
                    stats.tags.add(stamp.tag)
                    stats.last_seq = stamp.seq
                    stats.latencies_ms.append(now_ms() - stamp.time_ms)
            else:
                stats.audio_frames += 1
                stats.audio_level = audio_level(frame)
                stats.audio_level_at = time.monotonic()
            if self.call.sink is not None and track.kind == "video":
                self.call.sink(self.peer, frame_to_rgb(frame))
            if self.call.frame_sink is not None and track.kind == "video":
                self.call.frame_sink(self.peer, frame)  # no conversion here: the sink's job
            for tap in list(self.call.taps):
                tap(self.peer, frame)

    # -- reporting -------------------------------------------------------------------------

    def route(self) -> str | None:
        """"relay" when the nominated pair goes through TURN, "direct" otherwise."""
        pc = self.pc
        if pc is None or pc.connectionState != "connected":
            return None
        for transceiver in pc.getTransceivers():
            transport = transceiver.sender.transport
            ice = transport.transport if transport is not None else None
            connection = getattr(ice, "_connection", None)
            nominated = getattr(connection, "_nominated", {}) if connection else {}
            for pair in nominated.values():
                types = {pair.local_candidate.type, pair.remote_candidate.type}
                return "relay" if "relay" in types else "direct"
        return None

    def time_to_first_frame(self) -> float | None:
        if self.setup_started is None or self.stats.first_frame_at is None:
            return None
        return self.stats.first_frame_at - self.setup_started


class Call:
    """One call id, our side of it: a link to each remote device."""

    def __init__(self, call_id: str, local: Party, *, sign: Sign, key_for: KeyFor,
                 send: SendSignal, options: CallOptions | None = None,
                 on_event: Callable[[str, PeerLink], None] | None = None,
                 sink: FrameSink | None = None, ice_source: RefreshIce | None = None,
                 video: TrackFactory | None = None,
                 audio: TrackFactory | None = None,
                 frame_sink: RawFrameSink | None = None) -> None:
        self.call_id = call_id
        self.local = local
        self.sign = sign
        self.key_for = key_for
        self._send = send
        self.options = options or CallOptions()
        self.on_event = on_event
        self.sink = sink
        self.frame_sink = frame_sink
        self.taps: list[MediaTap] = []  # every decoded remote frame (e.g. a recorder)
        self.control_handlers: list[ControlHandler] = []
        self.links: dict[Party, PeerLink] = {}
        # The waiting room (docs/calls.md, "Waiting room"): the host is the one who placed
        # the call. ``allowed`` None lets any trusted device that offers join (a bare Call);
        # otherwise a validly signed offer from a device that is not in it is held, unanswered,
        # until the host admits that device (:meth:`allow`).
        self.host: Party = local
        self.allowed: set[Party] | None = None
        self.held: dict[Party, Any] = {}
        self._ice_source = ice_source
        self._relay = MediaRelay()  # one capture, one subscription per peer connection
        # Camera and microphone behind an off switch (camera off, mute): see GatedTrack.
        self._camera = GatedTrack(video() if video else
                                  SyntheticVideoTrack(self.options.video_tag))
        self._video: MediaStreamTrack = self._camera  # what is sent: the camera or a share
        self._audio: GatedTrack | None = None
        if self.options.audio:
            self._audio = GatedTrack(audio() if audio else ToneAudioTrack())
        self.closed = False

    # -- local media switches --------------------------------------------------------------

    @property
    def muted(self) -> bool:
        return self._audio is None or not self._audio.enabled

    def set_muted(self, muted: bool) -> None:
        """Mute: silence is sent instead of the microphone (on every link, at once)."""
        if self._audio is not None:
            self._audio.enabled = not muted

    @property
    def camera_on(self) -> bool:
        return self._camera.enabled

    def set_camera(self, on: bool) -> None:
        """Camera off: black frames are sent instead of the camera's (timing kept, so the
        peers' stall watchdogs see media; nothing captured leaves the machine)."""
        self._camera.enabled = on

    def local_media(self) -> list[MediaStreamTrack]:
        """Subscriptions to our own camera and microphone *as sent* (black / silent while
        off), e.g. for the host's recording. The caller stops them."""
        tracks = [self._relay.subscribe(self._camera, buffered=False)]
        if self._audio is not None:
            tracks.append(self._relay.subscribe(self._audio, buffered=False))
        return tracks

    def camera_preview(self) -> MediaStreamTrack:
        """A subscription to the camera as sent (black while off), for a self view.
        The caller stops it."""
        return self._relay.subscribe(self._camera, buffered=False)

    async def refresh_ice(self) -> None:
        if self._ice_source is None:
            return
        try:
            self.options.ice = await self._ice_source()
        except Exception as exc:  # keep the old servers; the rebuild still tries them
            log.info("ICE refresh failed", extra={"event": "call_ice_refresh_failed",
                                                  "reason_code": exc.__class__.__name__})

    def local_tracks(self) -> list[MediaStreamTrack]:
        tracks = [self._relay.subscribe(self._video, buffered=False)]
        if self._audio is not None:
            tracks.append(self._relay.subscribe(self._audio, buffered=False))
        return tracks

    @property
    def sharing(self) -> bool:
        return self._video is not self._camera

    def send_video(self, track: MediaStreamTrack | None) -> None:
        """Send ``track`` (a screen share) in place of the camera, or the camera again for
        None: on every link at once (no renegotiation, same codec) and after any rebuild.
        The caller owns ``track`` and stops it."""
        self._video = track if track is not None else self._camera
        for link in self.links.values():
            pc = link.pc
            if pc is None:
                continue
            for sender in pc.getSenders():
                old = sender.track
                if old is not None and old.kind == "video":
                    sender.replaceTrack(self._relay.subscribe(self._video, buffered=False))
                    old.stop()  # the old relay proxy

    def participants(self) -> list[Party]:
        """Us and every remote device still in the call (not those who left or were
        refused): the mesh a newcomer connects to."""
        return [self.local, *(p for p, link in self.links.items()
                              if link.state not in (LinkState.CLOSED, LinkState.REFUSED))]

    async def allow(self, party: Party) -> None:
        """The host admitted ``party``: accept its offer (one held already is answered now)."""
        if self.allowed is not None:
            self.allowed.add(party)
        payload = self.held.pop(party, None)
        if payload is not None:
            await self.handle(party, "offer", payload)

    def _gated(self, sender: Party, payload: Any) -> bool:
        """Hold a validly signed offer from a device the host has not admitted (a forged or
        untrusted one goes on to be refused, as before)."""
        if self.allowed is None or sender in self.allowed or sender in self.links:
            return False
        try:
            verify_description(payload, key_for=self.key_for, call_id=self.call_id,
                               kind="offer", sender=sender, recipient=self.local,
                               min_generation=1)
        except CallRefused:
            return False
        if sender in self.held or len(self.held) < MAX_HELD:
            self.held[sender] = payload
        log.info("offer held until admitted", extra={"event": "call_offer_held"})
        return True

    def on_control(self, peer: Party, message: dict[str, Any]) -> None:
        for handler in list(self.control_handlers):
            handler(peer, message)

    def notify(self, what: str, link: PeerLink) -> None:
        if self.on_event is not None:
            self.on_event(what, link)

    async def send(self, peer: Party, kind: str, payload: dict[str, Any]) -> None:
        if not self.closed:
            await self._send(peer, kind, payload)

    def link(self, peer: Party, *, offerer: bool) -> PeerLink:
        existing = self.links.get(peer)
        if existing is not None:
            return existing
        link = self.links[peer] = PeerLink(self, peer, offerer=offerer)
        return link

    async def connect(self, peer: Party, *, offerer: bool) -> PeerLink:
        link = self.link(peer, offerer=offerer)
        if link.state is LinkState.NEW and not self.closed:  # an ended call starts nothing
            await link.start()
        return link

    async def handle(self, sender: Party, kind: str, payload: Any) -> None:
        """A signal from ``sender`` (as authenticated by the relay) for this call."""
        if self.closed:
            return
        if kind == "offer":
            if self._gated(sender, payload):
                return
            link = self.link(sender, offerer=False)
            if link.state is LinkState.NEW:
                await link.start()
            await link.on_offer(payload)
        elif kind == "answer" and sender in self.links:
            await self.links[sender].on_answer(payload)
        elif kind == "invite" and sender in self.links:
            await self.links[sender].on_rebuild_request(payload)
        elif kind in ("hangup", "reject") and sender in self.links:
            await self.links[sender].close()
            self.notify("ended", self.links[sender])

    async def hangup(self) -> None:
        # Closed first: a link started while the hang-up awaits (an offer arriving, a
        # connect) would not be in the list below, and its connection would never close.
        self.closed = True
        for peer, link in list(self.links.items()):
            if link.state not in (LinkState.REFUSED, LinkState.CLOSED):
                with contextlib.suppress(Exception):
                    await self._send(peer, "hangup", {})
            await link.close()
        self._camera.stop()
        if self._audio is not None:
            self._audio.stop()

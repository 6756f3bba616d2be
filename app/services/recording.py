"""Consent-gated call recording (Qt-free; docs/calls.md, "Recording").

* The host asks every participant over each link's control data channel (DTLS, end to end
  between the two devices whose fingerprints are signed by their identity keys -- the relay
  never sees it). Each participant's client asks its user; the answer is a statement signed
  with that device's identity key, checked by the host against the key its own directory
  view holds for the device.
* Recording starts only when every participant connected at that moment has consented (the
  host's own click is its consent); one refusal, or no answer within ``ask_timeout_s``,
  refuses the recording. A participant who joins later is asked at once, and their media is
  not recorded until their consent arrives.
* Everyone is told the state (``rec.status``): the call view shows the indicator.
* The host's client records the decoded remote media and its own (``app.rtc.recorder``),
  streamed to disk sealed: each participant's Matroska segment goes, 256 KiB at a time, into
  a spool of AES-256-GCM records whose key waits in the cache's secrets table (memory stays
  bounded; a crash leaves ciphertext only, removed by :meth:`RecordingService.purge`). On
  stop the spools are streamed, decrypted chunk by chunk, into one AES-256-GCM file
  (``app.crypto.files`` format) in the cache's ``EncryptedFileStore``: its key lives in the
  SQLCipher cache's secrets, never beside the file. The consents are bound into the file:
  its plaintext begins with a metadata block holding every signed consent, so it is
  encrypted and authenticated with the media.
* Sharing (:meth:`RecordingService.share`): the transfer engine reads the sealed file
  through its decryptor, chunk by chunk in memory, and encrypts it once under the
  transfer's own key (``upload_stored``: never plaintext on disk, not ciphertext of
  ciphertext; the local key stays on this device); one ``sc.recording`` room event (v2),
  Megolm-encrypted, carries the engine's signed descriptor -- the transfer key travels only
  inside the room's E2EE channel. The event's id is chosen before the upload and kept with
  the transfer (purpose ``recording``): a share a restart interrupted goes on at the next
  sign-in (``ChatFiles.resume_pending``) and its event is sent once (docs/e2ee.md, "After a
  restart").
* Receiving (:meth:`RecordingService.fetch`): the descriptor's signature is checked against
  the sender device this device knows, the engine checks every chunk and the digest and
  decrypts into this device's encrypted store under a new key of its own (no plaintext on
  disk); :meth:`RecordingService.load` opens it in memory for playback, checking every
  consent signature.
* Retention (:meth:`RecordingService.purge`): recordings older than
  ``Policy.retention_days`` are removed, key first, then file.
* Every step is audited, identifiers only: ``record.start`` (once per request: started or
  refused; each participant's own consent on their device) / ``record.stop``,
  ``record.purge`` (retention), ``file.send`` (one per share, object the recording,
  ``step=recording_shared``), ``file.download`` (one per fetch, ``step=recording_fetch``,
  and one per playback, ``recording_play``); the engine's per-blob entries are left out.

The host's own camera and microphone are recorded as sent (black / silent while off).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import logging
import secrets
import struct
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from psygnal import Signal

from app.core.errors import SafeConsultError
from app.crypto.files import new_file_key
from app.crypto.identity import verify_ed25519
from app.rtc.recorder import SPOOL_SUFFIX, CallRecorder, SealedSpool
from app.rtc.signing import Party
from app.services.calls import CallsService
from app.services.chat_content import new_event_id

log = logging.getLogger(__name__)

MAGIC = b"SCREC1\n"
_LEN = struct.Struct(">I")
RECORDING_EVENT = "sc.recording"
SPOOL_DIR = "recording-spool"
_SPOOL_KEY = "recording-spool:"  # secrets: the spool key of a recording in progress
_INDEX = "recording:"  # secrets: one entry per stored recording (ids and times only)
RECORDING_PURPOSE = "recording"  # its upload's purpose (app.storage.transfers.RECORDING)


class RecordingRefused(SafeConsultError):
    user_message = "The call cannot be recorded: not everyone in it agreed."


class RecordingUnavailable(SafeConsultError):
    user_message = "The call cannot be recorded right now."


class RecordingTampered(SafeConsultError):
    user_message = ("This recording was changed after it was made, or its sender or its "
                    "consents cannot be verified, so it was not opened.")


class RecordingState(StrEnum):
    ASKING = "asking"
    RECORDING = "recording"
    REFUSED = "refused"
    STOPPED = "stopped"


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


def consent_statement(*, recording_id: str, call_id: str, host: Party, party: Party,
                      consent: bool, ts_ms: int) -> bytes:
    """The exact bytes a participant's device signs (canonical JSON)."""
    return json.dumps({
        "v": 1, "type": "sc.recording.consent", "recording_id": recording_id,
        "call_id": call_id, "host": [host.user_id, host.device_id],
        "participant": [party.user_id, party.device_id], "consent": consent, "ts_ms": ts_ms,
    }, sort_keys=True, separators=(",", ":")).encode()


@dataclass(frozen=True)
class Consent:
    party: Party
    consent: bool
    ts_ms: int
    signature: str

    def as_json(self) -> dict[str, Any]:
        return {"user_id": self.party.user_id, "device_id": self.party.device_id,
                "consent": self.consent, "ts_ms": self.ts_ms, "signature": self.signature}


@dataclass(frozen=True)
class ConsentRequest:
    """Shown to a participant: ``host`` asks to record ``call_id``."""

    call_id: str
    recording_id: str
    host: Party


@dataclass(frozen=True)
class RecordingStatus:
    """For the indicator, on every side."""

    call_id: str
    recording_id: str
    state: RecordingState
    host: Party


@dataclass
class Recording:
    recording_id: str
    call_id: str
    room_id: str
    host: Party
    state: RecordingState = RecordingState.ASKING
    consents: dict[Party, Consent] = field(default_factory=dict)
    asked: set[Party] = field(default_factory=set)
    recorder: CallRecorder | None = None
    started_ms: int | None = None
    stopped_ms: int | None = None
    file_id: str | None = None
    reason: str = ""
    spool_id: bytes = b""
    local_tracks: list[Any] = field(default_factory=list)  # the host's own media, recorded
    pumps: list[asyncio.Task] = field(default_factory=list)
    decided: asyncio.Event = field(default_factory=asyncio.Event)


class RecordingService:
    consent_requested = Signal(object)  # ConsentRequest: ask the user (participant side)
    changed = Signal(object)  # RecordingStatus: the indicator (every side)

    shared = Signal(object)  # SharedRecording: a recording was shared in a room (any side)

    def __init__(self, calls: CallsService, *, store: Any = None,
                 audit: Callable[..., Any] | None = None, ask_timeout_s: float = 60.0,
                 chat: Any = None, engine: Any = None, files: Any = None,
                 clock_ms: Callable[[], int] | None = None) -> None:
        self.calls = calls
        self._store = store  # EncryptedFileStore; default: the session cache's
        self.chat = chat  # ChatService: sc.recording room events (share / receive)
        self.engine = engine  # TransferEngine: the upload / download of the sealed file
        self._clock_ms = clock_ms or _now_ms
        self.available: dict[str, SharedRecording] = {}  # shared in rooms, by recording id
        self._sharing: set[str] = set()  # sc.recording event ids of shares going on now
        if chat is not None:
            chat.room_event.connect(self._on_room_event)
        if files is not None:  # ChatFiles: a share a restart interrupted goes on at sign-in
            files.register(RECORDING_PURPOSE, _ShareAnnouncer(self))
        self._audit = audit
        self.ask_timeout_s = ask_timeout_s
        self.recordings: dict[str, Recording] = {}  # host side, by call id
        self.requests: dict[str, ConsentRequest] = {}  # participant side, by call id
        self.status: dict[str, RecordingStatus] = {}  # what each call's indicator shows
        self._attached: set[int] = set()
        self._tasks: set[asyncio.Task] = set()
        calls.event.connect(self._on_call_event)

    # -- plumbing --------------------------------------------------------------------------

    @property
    def store(self) -> Any:
        if self._store is None:
            from app.storage.files import EncryptedFileStore

            cache = self.calls.session.cache
            if cache is None:
                raise RecordingUnavailable("no open cache")
            self._store = EncryptedFileStore(cache)
        return self._store

    @property
    def cache(self) -> Any:
        cache = self.calls.session.cache
        if cache is None:
            raise RecordingUnavailable("no open cache")
        return cache

    @property
    def _secrets(self) -> Any:
        from app.storage.secrets import SecretRepository

        return SecretRepository(self.cache)

    def _record(self, action: str, call_id: str, outcome: str = "ok",
                object_type: str = "call", **detail: str) -> None:
        if self._audit is not None:
            self._audit(action, object_type=object_type, object_id=call_id, outcome=outcome,
                        detail=detail)
            return
        audit = self.calls.session.audit
        if audit is not None:
            audit.record(action, object_type=object_type, object_id=call_id,
                         outcome=outcome, detail=detail)

    def _spawn(self, coro) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def attach(self, call_id: str) -> None:
        """Listen on the call's control channels (idempotent; done on the call's events)."""
        call = self.calls.calls.get(call_id)
        if call is None or id(call) in self._attached:
            return
        self._attached.add(id(call))
        call.control_handlers.append(
            lambda peer, message: self._on_control(call_id, peer, message))

    async def _send(self, call_id: str, peer: Party, message: dict[str, Any],
                    wait_s: float = 15.0) -> bool:
        """Send on the peer's control channel, waiting for it to open (a new link)."""
        deadline = time.monotonic() + wait_s
        while True:
            call = self.calls.calls.get(call_id)
            link = call.links.get(peer) if call is not None else None
            if link is None:
                return False
            if link.send_control(message):
                return True
            if time.monotonic() > deadline:
                return False
            await asyncio.sleep(0.1)

    def _broadcast(self, rec: Recording) -> None:
        status = RecordingStatus(rec.call_id, rec.recording_id, rec.state, rec.host)
        self.status[rec.call_id] = status
        self.changed.emit(status)
        call = self.calls.calls.get(rec.call_id)
        for peer in list(call.links) if call is not None else []:
            self._spawn(self._send(rec.call_id, peer, {
                "t": "rec.status", "rid": rec.recording_id, "state": rec.state.value}))

    def _sign_consent(self, *, recording_id: str, call_id: str, host: Party,
                      consent: bool) -> Consent:
        local = self.calls.local
        ts_ms = _now_ms()
        statement = consent_statement(recording_id=recording_id, call_id=call_id, host=host,
                                      party=local, consent=consent, ts_ms=ts_ms)
        return Consent(local, consent, ts_ms, self.calls.device.identity.sign(statement))

    # -- host ------------------------------------------------------------------------------

    def _connected(self, call_id: str) -> list[Party]:
        call = self.calls.calls.get(call_id)
        if call is None:
            return []
        return [p for p, link in call.links.items() if link.state.value == "connected"]

    async def record(self, call_id: str) -> Recording:
        """Ask everyone; returns once recording runs. Raises RecordingRefused when anyone
        declines or does not answer within ``ask_timeout_s`` (nothing is recorded then)."""
        if call_id not in self.calls.calls:
            raise RecordingUnavailable(f"no call {call_id}")
        current = self.recordings.get(call_id)
        if current is not None and current.state in (RecordingState.ASKING,
                                                     RecordingState.RECORDING):
            return current
        peers = self._connected(call_id)
        if not peers:
            raise RecordingUnavailable("nobody connected yet")
        self.attach(call_id)
        host = self.calls.local
        rec = Recording("rec-" + secrets.token_hex(8), call_id,
                        self.calls.rooms.get(call_id, ""), host)
        rec.consents[host] = self._sign_consent(recording_id=rec.recording_id,
                                                call_id=call_id, host=host, consent=True)
        self.recordings[call_id] = rec
        # Audited once, when the request is decided: record.start "started" (ok) or
        # "refused" (issue #8: one action, one entry).
        self._broadcast(rec)
        for peer in peers:
            self._ask(rec, peer)
        try:
            await asyncio.wait_for(rec.decided.wait(), self.ask_timeout_s)
        except TimeoutError:
            self._refuse(rec, "no_answer")
        if rec.state is not RecordingState.RECORDING:
            raise RecordingRefused(rec.reason or "refused")
        return rec

    def _ask(self, rec: Recording, peer: Party) -> None:
        rec.asked.add(peer)
        self._spawn(self._send(rec.call_id, peer, {
            "t": "rec.request", "rid": rec.recording_id,
            "host": [rec.host.user_id, rec.host.device_id]}))

    def _refuse(self, rec: Recording, reason: str) -> None:
        if rec.state is not RecordingState.ASKING:
            return
        rec.state = RecordingState.REFUSED
        rec.reason = reason
        self._record("record.start", rec.call_id, outcome="refused", step="refused",
                     recording_id=rec.recording_id, reason=reason)
        self._broadcast(rec)
        rec.decided.set()

    def _begin(self, rec: Recording) -> None:
        """Start recording; refuses unless every connected participant consented."""
        call = self.calls.calls.get(rec.call_id)
        needed = set(self._connected(rec.call_id)) | {rec.host}
        missing = [p for p in needed if not (p in rec.consents and rec.consents[p].consent)]
        if call is None or missing:
            raise RecordingRefused("consent missing")
        # The spool key goes into the cache's secrets first (never beside the spools).
        key, rec.spool_id = new_file_key(), secrets.token_bytes(8)
        spool_dir = self.cache.directory / SPOOL_DIR
        spool_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        self._secrets.put(_SPOOL_KEY + rec.spool_id.hex(), key)
        rec.recorder = CallRecorder(set(rec.consents), spool_dir=spool_dir, key=key,
                                    spool_id=rec.spool_id)
        del key
        call.taps.append(rec.recorder.tap)
        # The host's own camera and microphone, as sent (black / silent while off).
        rec.local_tracks = call.local_media()
        loop = asyncio.get_running_loop()
        rec.pumps = [loop.create_task(self._pump(rec.recorder, rec.host, track))
                     for track in rec.local_tracks]
        rec.state = RecordingState.RECORDING
        rec.started_ms = _now_ms()
        self._record("record.start", rec.call_id, step="started",
                     recording_id=rec.recording_id, participants=str(len(rec.consents)))
        self._broadcast(rec)
        rec.decided.set()

    @staticmethod
    async def _pump(recorder: CallRecorder, host: Party, track: Any) -> None:
        while True:
            try:
                frame = await track.recv()
            except Exception:  # the track ended (aiortc's MediaStreamError)
                return
            recorder.tap(host, frame)

    def _on_consent(self, call_id: str, peer: Party, message: dict[str, Any]) -> None:
        rec = self.recordings.get(call_id)
        if rec is None or message.get("rid") != rec.recording_id or peer not in rec.asked:
            return
        consent, ts_ms, signature = (message.get("consent"), message.get("ts_ms"),
                                     message.get("sig"))
        if not (isinstance(consent, bool) and isinstance(ts_ms, int)
                and isinstance(signature, str)):
            return
        key = self.calls.key_for(peer.user_id, peer.device_id)
        statement = consent_statement(recording_id=rec.recording_id, call_id=call_id,
                                      host=rec.host, party=peer, consent=consent, ts_ms=ts_ms)
        if key is None or not verify_ed25519(key, statement, signature):
            log.warning("consent signature refused", extra={
                "event": "recording_consent_bad_signature"})
            return
        rec.consents[peer] = Consent(peer, consent, ts_ms, signature)
        if not consent:
            if rec.state is RecordingState.RECORDING and rec.recorder is not None:
                rec.recorder.allowed.discard(peer)  # a late joiner who declined: not recorded
                return
            self._refuse(rec, "declined")
            return
        if rec.state is RecordingState.RECORDING and rec.recorder is not None:
            rec.recorder.allowed.add(peer)  # a late joiner: recorded from now on
            self._record("record.start", call_id, step="late_consent",
                         recording_id=rec.recording_id)
            return
        if rec.state is RecordingState.ASKING:
            needed = set(self._connected(call_id))
            if all(p in rec.consents and rec.consents[p].consent for p in needed):
                self._begin(rec)

    async def stop(self, call_id: str) -> str | None:
        """Stop and seal: returns the encrypted file's id in the store (None if nothing
        was recording). With the chat service and transfer engine given, the recording is
        then shared in the consult's room (:meth:`share`)."""
        rec = self.recordings.get(call_id)
        if rec is None or rec.state is not RecordingState.RECORDING or rec.recorder is None:
            return None
        recorder, rec.recorder = rec.recorder, None
        rec.state = RecordingState.STOPPED
        rec.stopped_ms = _now_ms()
        call = self.calls.calls.get(call_id) or next(
            (c for c in reversed(self.calls.finished) if c.call_id == call_id), None)
        if call is not None:
            with contextlib.suppress(ValueError):
                call.taps.remove(recorder.tap)
        for pump in rec.pumps:
            pump.cancel()
        for track in rec.local_tracks:
            track.stop()
        rec.pumps, rec.local_tracks = [], []
        self._broadcast(rec)
        spools = await asyncio.to_thread(recorder.finish)
        header = pack_header(rec, {party: spool.length for party, spool in spools.items()})
        parts: list[Iterable[bytes]] = [[header]]
        parts += [SealedSpool.read(spool.path, recorder.key, spool.spool_id, spool.records)
                  for spool in spools.values()]
        length = len(header) + sum(spool.length for spool in spools.values())
        store = self.store
        # On the loop's thread: the cache's SQLCipher connection (the key's home) lives here.
        # Streamed: one spool record (256 KiB) in memory at a time; AES-GCM runs at GB/s.
        try:
            rec.file_id = store.put(ChainReader(itertools.chain(*parts)), length)
        finally:
            self._drop_spool(rec.spool_id.hex())
        self._index_put(rec.recording_id, {
            "file_id": rec.file_id, "room_id": rec.room_id, "call_id": rec.call_id,
            "started_ms": rec.started_ms, "stopped_ms": rec.stopped_ms,
            "host": [rec.host.user_id, rec.host.device_id], "stored_ms": self._clock_ms()})
        self._record("record.stop", call_id, recording_id=rec.recording_id,
                     file_id=rec.file_id, segments=str(len(spools)))
        if self.chat is not None and self.engine is not None and rec.room_id:
            try:  # shared in the consult's room at once; kept here (share() again) on failure
                await self.share(rec.recording_id)
            except SafeConsultError as exc:  # share() audited the failure
                log.warning("recording not shared", extra={
                    "event": "recording_share_failed", "reason_code": exc.__class__.__name__})
        return rec.file_id

    def _drop_spool(self, spool_hex: str) -> None:
        """Key first (crypto-erase), then the spool files."""
        self._secrets.delete(_SPOOL_KEY + spool_hex)
        spool_dir = self.cache.directory / SPOOL_DIR
        for path in spool_dir.glob(f"{spool_hex}-*{SPOOL_SUFFIX}"):
            path.unlink(missing_ok=True)

    # -- the local index (ids and times only, in the SQLCipher cache) ----------------------

    def _index_put(self, recording_id: str, entry: dict[str, Any]) -> None:
        self._secrets.put(_INDEX + recording_id, json.dumps(entry, sort_keys=True).encode())

    def stored(self) -> dict[str, dict[str, Any]]:
        """This device's recordings (made here or fetched), by recording id."""
        repo = self._secrets
        out = {}
        for name in repo.names(_INDEX):
            raw = repo.get(name)
            if raw is not None:
                out[name[len(_INDEX):]] = json.loads(raw)
        return out

    # -- share / receive -------------------------------------------------------------------

    def _need_room_channel(self) -> None:
        if self.chat is None or self.engine is None:
            raise RecordingUnavailable("sharing needs the chat service and transfer engine")

    async def share(self, recording_id: str) -> str:
        """Upload the recording into its consult's room (read through the store's
        decryptor, encrypted once by the engine) and announce it with one ``sc.recording``
        room event; returns the event id. One ``file.send`` entry, ok or failed.

        Resumable end to end: the event's id is chosen before the upload and kept with the
        transfer (purpose ``recording``); a restart mid-way leaves the transfer to the next
        sign-in, which finishes it and announces it here (:meth:`announce`, registered
        with ``ChatFiles``) -- once, with the same one audit entry."""
        self._need_room_channel()
        entry = self.stored().get(recording_id)
        if entry is None or not entry.get("room_id"):
            raise RecordingUnavailable("no such recording here")
        file_id = entry["file_id"]
        if self.store.key(file_id) is None:
            raise RecordingUnavailable("recording key gone")
        event_id, transfer_id = new_event_id(), secrets.token_hex(16)
        self._sharing.add(event_id)
        try:
            desc = await self.engine.upload_stored(
                entry["room_id"], file_id, name="recording.scf",
                mime="application/octet-stream", audit=False, transfer_id=transfer_id,
                announce_event_id=event_id, purpose=RECORDING_PURPOSE,
                purpose_ref=recording_id)
            return await self._announce(recording_id, transfer_id, desc, event_id)
        except SafeConsultError as exc:
            # Failed while this process runs: final (the user shares again), so nothing is
            # left for the next sign-in to resume or announce.
            with self.engine.transaction():
                self._share_failed(recording_id, str(getattr(exc, "code", "") or "error"))
                with contextlib.suppress(SafeConsultError):
                    self.engine.cancel(transfer_id)
                    self.engine.announced(transfer_id)
            raise
        finally:
            self._sharing.discard(event_id)

    def _share_failed(self, recording_id: str, reason: str) -> None:
        self._record("file.send", recording_id, outcome="failed", object_type="recording",
                     step="recording_shared", reason=reason[:60])

    async def _announce(self, recording_id: str, transfer_id: str, desc: Any,
                        event_id: str) -> str:
        """Send the ``sc.recording`` event of a finished upload under ``event_id`` (once:
        the chat does not queue that id twice), then -- in one commit -- mark the index
        entry shared, record the one ``file.send`` entry and settle the transfer."""
        entry = self.stored().get(recording_id)
        if entry is None:
            raise RecordingUnavailable("no such recording here")
        metadata = self._metadata(entry["file_id"])
        content = {
            "v": 2, "recording_id": recording_id, "call_id": entry["call_id"],
            "descriptor": desc.to_wire(),
            "host": entry["host"], "started_ms": entry["started_ms"],
            "duration_ms": max(0, (entry["stopped_ms"] or 0) - (entry["started_ms"] or 0)),
            "consents": [[c["user_id"], c["device_id"]] for c in metadata["consents"]],
        }
        sent = await self.chat.send_room_event(entry["room_id"], RECORDING_EVENT, content,
                                               event_id=event_id)
        with self.engine.transaction():
            entry["shared_event"] = sent
            self._index_put(recording_id, entry)
            self._record("file.send", recording_id, object_type="recording",
                         step="recording_shared", call=entry["call_id"],
                         room_id=entry["room_id"], blob_id=desc.blob_id)
            self.engine.announced(transfer_id)
        return sent


    def _metadata(self, file_id: str) -> dict[str, Any]:
        chunks = self.store.open(file_id)
        try:
            head = next(chunks)
            if not head.startswith(MAGIC):
                raise RecordingTampered("not a recording")
            (size,) = _LEN.unpack_from(head, len(MAGIC))
            start = len(MAGIC) + _LEN.size
            body = head
            for more in chunks:
                if len(body) >= start + size:
                    break
                body += more
            return json.loads(body[start:start + size])
        finally:
            chunks.close()

    def _on_room_event(self, event: Any) -> None:
        if event.event_type != RECORDING_EVENT:
            return
        content = event.content.reveal()
        rid = content.get("recording_id") if isinstance(content, dict) else None
        if not (isinstance(rid, str) and 0 < len(rid) <= 64 and content.get("v") == 2
                and isinstance(content.get("descriptor"), dict)):
            log.info("recording event ignored", extra={"event": "recording_event_malformed"})
            return
        shared = SharedRecording(event.room_id, event.event_id, event.sender,
                                 event.sender_device, rid, content)
        self.available.setdefault(rid, shared)
        self.shared.emit(shared)

    def _sender_record(self, shared: SharedRecording) -> Any:
        for record in self.chat.devices(shared.sender):
            if record.device_id == shared.sender_device:
                return record
        raise RecordingTampered("sender device not in the device list")

    def _key_for(self, user_id: str, device_id: str) -> str | None:
        if (user_id, device_id) == (self.calls.local.user_id, self.calls.local.device_id):
            return self.calls.device.identity.ed25519
        if self.chat is not None:
            for record in self.chat.devices(user_id):
                if record.device_id == device_id:
                    return record.ed25519
        return self.calls.key_for(user_id, device_id)

    async def fetch(self, recording_id: str) -> str:
        """Download, verify and re-seal a shared recording into this device's store;
        returns its file id here (the same again if already fetched)."""
        self._need_room_channel()
        have = self.stored().get(recording_id)
        if have is not None:
            return have["file_id"]
        shared = self.available.get(recording_id)
        if shared is None:
            raise RecordingUnavailable("no such recording shared")
        content = shared.content
        try:
            if content["host"] != [shared.sender, shared.sender_device]:
                raise RecordingTampered("event names another device than the room key")
            record = self._sender_record(shared)
            try:  # into this device's encrypted store, under a key of its own
                file_id = await self.engine.download(content["descriptor"], record,
                                                     room_id=shared.room_id, audit=False)
            except SafeConsultError as exc:
                raise RecordingTampered(f"file refused ({getattr(exc, 'code', 'error')})") from None
            try:
                metadata = self._metadata(file_id)
            except (ValueError, KeyError, StopIteration, SafeConsultError):
                self.store.delete(file_id)
                raise RecordingTampered("not a recording") from None
            if (metadata.get("recording_id") != recording_id
                    or metadata.get("room_id") != shared.room_id
                    or not verify_consents(metadata, self._key_for)):
                self.store.delete(file_id)
                raise RecordingTampered("consents do not verify")
        except RecordingTampered as exc:
            self._record("file.download", recording_id, outcome="refused",
                         object_type="recording", step="recording_fetch",
                         reason=str(exc)[:60])
            raise
        self._index_put(recording_id, {
            "file_id": file_id, "room_id": shared.room_id, "call_id": metadata["call_id"],
            "started_ms": metadata["started_ms"], "stopped_ms": metadata["stopped_ms"],
            "host": metadata["host"], "stored_ms": self._clock_ms()})
        self._record("file.download", recording_id, object_type="recording",
                     step="recording_fetch", room_id=shared.room_id, file_id=file_id)
        return file_id

    def load(self, recording_id: str) -> tuple[dict[str, Any], dict[Party, bytes]]:
        """A stored recording, decrypted in memory, its consents checked (for playback)."""
        entry = self.stored().get(recording_id)
        if entry is None:
            raise RecordingUnavailable("no such recording here")
        metadata, segments = unpack_recording(self.store.read(entry["file_id"]))
        if not verify_consents(metadata, self._key_for):
            raise RecordingTampered("consents do not verify")
        self._record("file.download", recording_id, object_type="recording",
                     step="recording_play", file_id=entry["file_id"])
        return metadata, segments

    # -- retention -------------------------------------------------------------------------

    def purge(self, *, now_ms: int | None = None) -> int:
        """Remove recordings older than ``Policy.retention_days`` (key first, then file)
        and the spools a crash left behind; returns how many recordings went."""
        now = self._clock_ms() if now_ms is None else now_ms
        limit = self.calls.session.policy.retention_days * 86_400_000
        repo = self._secrets
        removed = 0
        for recording_id, entry in self.stored().items():
            if now - int(entry.get("stored_ms") or 0) <= limit:
                continue
            self.store.delete(entry["file_id"])  # its key first, then the ciphertext
            repo.delete(_INDEX + recording_id)
            removed += 1
            self._record("record.purge", entry.get("call_id") or recording_id,
                         step="retention_purged", recording_id=recording_id)
        active = {rec.spool_id.hex() for rec in self.recordings.values()
                  if rec.state is RecordingState.RECORDING}
        stale = {name[len(_SPOOL_KEY):] for name in repo.names(_SPOOL_KEY)}
        spool_dir = self.cache.directory / SPOOL_DIR
        if spool_dir.exists():
            stale |= {p.name.split("-", 1)[0] for p in spool_dir.glob(f"*{SPOOL_SUFFIX}")}
        for spool_hex in stale - active:
            self._drop_spool(spool_hex)
        return removed

    # -- participant -----------------------------------------------------------------------

    def answer(self, request: ConsentRequest, consent: bool) -> None:
        """The user's answer to ``request``, signed and sent to the host; audited."""
        self.requests.pop(request.call_id, None)
        signed = self._sign_consent(recording_id=request.recording_id,
                                    call_id=request.call_id, host=request.host,
                                    consent=consent)
        self._record("record.start", request.call_id, outcome="ok" if consent else "refused",
                     step="consent_given" if consent else "consent_declined",
                     recording_id=request.recording_id)
        self._spawn(self._send(request.call_id, request.host, {
            "t": "rec.consent", "rid": request.recording_id, "consent": consent,
            "ts_ms": signed.ts_ms, "sig": signed.signature}))

    # -- events ----------------------------------------------------------------------------

    def _on_control(self, call_id: str, peer: Party, message: dict[str, Any]) -> None:
        kind = message.get("t")
        rid = message.get("rid")
        if not isinstance(rid, str) or len(rid) > 64:
            return
        if kind == "rec.request":
            host = message.get("host")
            if host != [peer.user_id, peer.device_id]:
                return  # only the sender itself can be the host asking
            request = ConsentRequest(call_id, rid, peer)
            self.requests[call_id] = request
            self.consent_requested.emit(request)
        elif kind == "rec.consent":
            self._on_consent(call_id, peer, message)
        elif kind == "rec.status":
            try:
                state = RecordingState(message.get("state"))
            except ValueError:
                return
            status = RecordingStatus(call_id, rid, state, peer)
            self.status[call_id] = status
            if state is not RecordingState.ASKING:
                self.requests.pop(call_id, None)
            self.changed.emit(status)

    def _on_call_event(self, event: Any) -> None:
        self.attach(event.call_id)
        rec = self.recordings.get(event.call_id)
        if rec is None:
            return
        if event.what == "connected" and rec.state in (RecordingState.ASKING,
                                                       RecordingState.RECORDING):
            if event.peer not in rec.consents and event.peer not in rec.asked:
                self._ask(rec, event.peer)  # a late joiner: asked before being recorded
            elif event.peer in rec.asked and event.peer not in rec.consents:
                self._ask(rec, event.peer)  # a rebuilt link: ask again on the new channel
        elif event.what in ("ended", "lost", "refused") and rec.state is RecordingState.ASKING:
            needed = set(self._connected(event.call_id))
            if needed and all(p in rec.consents and rec.consents[p].consent for p in needed):
                self._begin(rec)
        ended = event.call_id not in self.calls.calls or all(
            link.state.value in ("closed", "refused")
            for link in self.calls.calls[event.call_id].links.values())
        if ended and rec.state is RecordingState.RECORDING:
            self._spawn(self.stop(event.call_id))  # the call ended: seal what we have


class _ShareAnnouncer:
    """The recording's announcer at sign-in (``ChatFiles.register``, purpose
    ``recording``): its upload goes on after a restart (it reads the encrypted file store),
    then its ``sc.recording`` event goes once, as in :meth:`RecordingService.share`."""

    resumable = True

    def __init__(self, service: RecordingService) -> None:
        self._service = service

    async def announce(self, record: Any, descriptor: Any) -> None:
        self._service._need_room_channel()
        await self._service._announce(record.purpose_ref, record.transfer_id, descriptor,
                                      record.announce_event_id)

    def failed(self, record: Any, code: str) -> None:
        self._service._share_failed(record.purpose_ref or "", code or "error")

    def ongoing(self, event_id: str) -> bool:
        return event_id in self._service._sharing  # share() announces it itself

    def interrupted(self, action: Any) -> None:  # resumable: never asked
        raise NotImplementedError


@dataclass(frozen=True)
class SharedRecording:
    """A ``sc.recording`` room event: ``content`` holds the descriptor and the file key."""

    room_id: str
    event_id: str
    sender: str
    sender_device: str
    recording_id: str
    content: dict[str, Any] = field(repr=False)

    @property
    def duration_ms(self) -> int:
        value = self.content.get("duration_ms")
        return value if isinstance(value, int) else 0

    @property
    def started_ms(self) -> int:
        value = self.content.get("started_ms")
        return value if isinstance(value, int) else 0


class ChainReader:
    """A read-only file over an iterator of byte strings (one piece in memory at a time)."""

    def __init__(self, pieces: Iterator[bytes]) -> None:
        self._pieces = iter(pieces)
        self._buf = b""

    def read(self, size: int = -1) -> bytes:
        while size < 0 or len(self._buf) < size:
            piece = next(self._pieces, None)
            if piece is None:
                break
            self._buf += piece
        if size < 0:
            out, self._buf = self._buf, b""
        else:
            out, self._buf = self._buf[:size], self._buf[size:]
        return out


# -- the file --------------------------------------------------------------------------------

def pack_header(rec: Recording, lengths: dict[Party, int]) -> bytes:
    """``MAGIC | len | metadata JSON``; the segments follow in ``lengths``' order. The
    consents travel inside the encrypted file, so they are authenticated with (and cannot
    be separated from) the media."""
    offset = 0
    index = []
    for party, length in lengths.items():
        index.append({"user_id": party.user_id, "device_id": party.device_id,
                      "offset": offset, "length": length, "format": "matroska"})
        offset += length
    metadata = json.dumps({
        "v": 1, "recording_id": rec.recording_id, "call_id": rec.call_id,
        "room_id": rec.room_id, "host": [rec.host.user_id, rec.host.device_id],
        "started_ms": rec.started_ms, "stopped_ms": rec.stopped_ms,
        "consents": [c.as_json() for c in rec.consents.values()], "segments": index,
    }, sort_keys=True).encode()
    return b"".join([MAGIC, _LEN.pack(len(metadata)), metadata])


def pack_recording(rec: Recording, segments: dict[Party, bytes]) -> bytes:
    """The whole file in memory (small recordings, tests)."""
    lengths = {party: len(data) for party, data in segments.items()}
    return pack_header(rec, lengths) + b"".join(segments.values())


def unpack_recording(blob: bytes) -> tuple[dict[str, Any], dict[Party, bytes]]:
    if not blob.startswith(MAGIC):
        raise ValueError("not a recording")
    (size,) = _LEN.unpack_from(blob, len(MAGIC))
    start = len(MAGIC) + _LEN.size
    metadata = json.loads(blob[start:start + size])
    body = blob[start + size:]
    segments = {Party(s["user_id"], s["device_id"]): body[s["offset"]:s["offset"] + s["length"]]
                for s in metadata["segments"]}
    return metadata, segments


def verify_consents(metadata: dict[str, Any], key_for: Callable[[str, str], str | None]
                    ) -> bool:
    """Every consent in a recording's metadata is a yes signed by its device's key."""
    host = Party(*metadata["host"])
    for item in metadata["consents"]:
        party = Party(item["user_id"], item["device_id"])
        key = key_for(party.user_id, party.device_id)
        statement = consent_statement(
            recording_id=metadata["recording_id"], call_id=metadata["call_id"], host=host,
            party=party, consent=item["consent"], ts_ms=item["ts_ms"])
        if not item["consent"] or key is None or not verify_ed25519(
                key, statement, item["signature"]):
            return False
    return True

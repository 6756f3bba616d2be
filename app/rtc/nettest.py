"""The pre-join network test's media half: can this machine reach the hospital's TURN relay,
get an allocation with the call's time-limited credentials, and how long is the round trip
and how many packets are lost on the way (docs/calls.md, "Pre-join network test").

* Allocation: aioice's TURN client (the one aiortc gathers relay candidates with) allocates
  on the first TURN URI with the REST credentials, then deletes the allocation.
* Round trip and loss: ``count`` STUN Binding requests (RFC 8489; coturn answers them on its
  listening port) sent over UDP at a steady pace; the median answered round trip, and the
  share never answered within ``answer_s``.
"""

from __future__ import annotations

import asyncio
import contextlib
import statistics
import time
from dataclasses import dataclass

from aioice import stun
from aioice.turn import create_turn_endpoint
from aiortc.rtcicetransport import parse_stun_turn_uri

from app.rtc.ice import TurnCredentials


@dataclass(frozen=True, slots=True)
class RelayProbe:
    allocated: bool
    allocation_ms: float | None = None
    rtt_ms: float | None = None  # median of the answered Binding requests
    loss: float = 1.0  # 0..1 of the Binding requests never answered
    sent: int = 0
    error: str = ""  # why the allocation failed: "timeout", "refused", "unreachable", ...


class _Binding(asyncio.DatagramProtocol):
    def __init__(self) -> None:
        self.sent: dict[bytes, float] = {}
        self.rtts: list[float] = []

    def datagram_received(self, data: bytes, addr) -> None:
        try:
            message = stun.parse_message(data)
        except ValueError:
            return
        started = self.sent.pop(message.transaction_id, None)
        if started is not None and message.message_class == stun.Class.RESPONSE:
            self.rtts.append((time.perf_counter() - started) * 1000.0)


def _server(turn: TurnCredentials) -> tuple[str, int, str] | None:
    for uri in turn.uris:
        try:
            parsed = parse_stun_turn_uri(uri)
        except ValueError:
            continue
        if parsed["scheme"] == "turn":
            return parsed["host"], parsed["port"], parsed.get("transport") or "udp"
    return None


async def round_trip(host: str, port: int, *, count: int = 10, interval_s: float = 0.03,
                     answer_s: float = 1.0) -> tuple[float | None, float]:
    """(median round trip in ms or None, loss 0..1) of ``count`` STUN Binding requests."""
    loop = asyncio.get_running_loop()
    try:
        transport, protocol = await loop.create_datagram_endpoint(
            _Binding, remote_addr=(host, port))
    except OSError:
        return None, 1.0
    try:
        for _ in range(count):
            request = stun.Message(message_method=stun.Method.BINDING,
                                   message_class=stun.Class.REQUEST)
            protocol.sent[request.transaction_id] = time.perf_counter()
            with contextlib.suppress(OSError):  # a send error counts as a loss
                transport.sendto(bytes(request))
            await asyncio.sleep(interval_s)
        deadline = time.monotonic() + answer_s
        while protocol.sent and time.monotonic() < deadline:
            await asyncio.sleep(0.02)
    finally:
        transport.close()
    answered = len(protocol.rtts)
    rtt = statistics.median(protocol.rtts) if answered else None
    return rtt, 1.0 - answered / count


async def probe_relay(turn: TurnCredentials, *, count: int = 10,
                      timeout_s: float = 3.0) -> RelayProbe:
    """Allocate on the TURN server with ``turn`` and measure the round trip to it."""
    server = _server(turn)
    if server is None:
        return RelayProbe(False, error="no_turn_uri")
    host, port, transport = server
    rtt, loss = await round_trip(host, port, count=count)
    started = time.perf_counter()
    try:
        endpoint, _protocol = await asyncio.wait_for(create_turn_endpoint(
            asyncio.DatagramProtocol, (host, port), turn.username, turn.credential,
            lifetime=60, transport=transport), timeout_s)
    except TimeoutError:
        return RelayProbe(False, rtt_ms=rtt, loss=loss, sent=count, error="timeout")
    except stun.TransactionFailed:
        return RelayProbe(False, rtt_ms=rtt, loss=loss, sent=count, error="refused")
    except stun.TransactionTimeout:
        return RelayProbe(False, rtt_ms=rtt, loss=loss, sent=count, error="timeout")
    except (OSError, ConnectionError):
        return RelayProbe(False, rtt_ms=rtt, loss=loss, sent=count, error="unreachable")
    allocation_ms = (time.perf_counter() - started) * 1000.0
    endpoint.close()  # deletes the allocation (a REFRESH with lifetime 0) in the background
    return RelayProbe(True, allocation_ms, rtt, loss, count)

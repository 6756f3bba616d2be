"""ICE configuration: STUN/TURN servers from the relay's short-lived TURN credentials
(coturn's REST scheme, ``GET /v1/turn/credentials``), and a relay-only mode in which no host
or server-reflexive candidate is offered -- media goes through TURN or not at all.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from aiortc import RTCConfiguration, RTCIceServer
from aiortc.rtcconfiguration import RTCIceTransportPolicy


@dataclass(frozen=True, slots=True)
class TurnCredentials:
    uris: tuple[str, ...]
    username: str
    credential: str
    ttl_s: int = 0


@dataclass(frozen=True, slots=True)
class IcePolicy:
    turn: TurnCredentials | None = None
    relay_only: bool = False
    stun_urls: tuple[str, ...] = ()


class NoRelayAvailable(ValueError):
    """Relay-only was asked for but there is no TURN server to relay through."""


def configuration(policy: IcePolicy) -> RTCConfiguration:
    servers: list[RTCIceServer] = []
    if policy.stun_urls:
        servers.append(RTCIceServer(urls=list(policy.stun_urls)))
    turn = policy.turn
    if turn is not None and turn.uris:
        servers.append(RTCIceServer(urls=list(turn.uris), username=turn.username,
                                    credential=turn.credential))
    if policy.relay_only and (turn is None or not turn.uris):
        raise NoRelayAvailable("relay-only calls need TURN credentials")
    return RTCConfiguration(
        iceServers=servers,
        iceTransportPolicy=(RTCIceTransportPolicy.RELAY if policy.relay_only
                            else RTCIceTransportPolicy.ALL))


def candidate_types(sdp: str) -> Sequence[str]:
    """The candidate types (host, srflx, relay) an SDP offers, in order."""
    types = []
    for line in sdp.splitlines():
        if line.startswith("a=candidate:"):
            parts = line.split()
            if "typ" in parts:
                types.append(parts[parts.index("typ") + 1])
    return types

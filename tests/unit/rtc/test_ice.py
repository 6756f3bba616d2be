"""ICE configuration from TURN credentials; relay-only."""

from __future__ import annotations

import pytest
from aiortc.rtcconfiguration import RTCIceTransportPolicy

from app.rtc.ice import IcePolicy, NoRelayAvailable, TurnCredentials, candidate_types, configuration

TURN = TurnCredentials(("turn:127.0.0.1:3478?transport=udp",), "1700000000:@u", "c2VjcmV0")


def test_turn_credentials_become_an_ice_server():
    config = configuration(IcePolicy(turn=TURN))
    (server,) = config.iceServers
    assert server.urls == list(TURN.uris)
    assert (server.username, server.credential) == (TURN.username, TURN.credential)
    assert config.iceTransportPolicy == RTCIceTransportPolicy.ALL


def test_relay_only_needs_turn():
    config = configuration(IcePolicy(turn=TURN, relay_only=True))
    assert config.iceTransportPolicy == RTCIceTransportPolicy.RELAY
    with pytest.raises(NoRelayAvailable):
        configuration(IcePolicy(relay_only=True))


def test_candidate_types():
    sdp = ("a=candidate:1 1 udp 2130706431 10.0.0.1 5000 typ host\r\n"
           "a=candidate:2 1 udp 16777215 127.0.0.1 6000 typ relay raddr 0.0.0.0 rport 0\r\n")
    assert list(candidate_types(sdp)) == ["host", "relay"]

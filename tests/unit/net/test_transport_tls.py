"""The transport talks to the reference server over real TLS pinned to its CA, and refuses a
server whose certificate does not chain to the pinned CA."""

import pytest
from cryptography.hazmat.primitives import serialization

from app.core.errors import CertificateNotPinned, ConnectionFailed, ServerError
from app.net.transport import Transport
from server_stub.tls import generate_ca


async def test_health_round_trip_over_pinned_tls(server):
    transport = Transport(server.url, server.ca_pem)
    try:
        body = await transport.get_json("/v1/health")
    finally:
        await transport.aclose()
    assert body["status"] == "ok"


async def test_server_not_signed_by_pinned_ca_is_refused(server):
    other_ca, _ = generate_ca("Some other CA")
    other_pem = other_ca.public_bytes(serialization.Encoding.PEM).decode()
    transport = Transport(server.url, other_pem)
    try:
        with pytest.raises(CertificateNotPinned) as info:
            await transport.get_json("/v1/health")
    finally:
        await transport.aclose()
    assert "contact IT" in info.value.user_message


async def test_system_trust_store_is_not_used(server):
    """Without a pinned CA the transport refuses to start rather than trust the OS store."""
    with pytest.raises(CertificateNotPinned):
        Transport(server.url, "")


async def test_unreachable_server_is_a_connection_error(server):
    port = server.port
    server.stop()
    transport = Transport(f"https://127.0.0.1:{port}", server.ca_pem, timeout_s=2)
    try:
        with pytest.raises(ConnectionFailed) as info:
            await transport.get_json("/v1/health")
    finally:
        await transport.aclose()
    assert not isinstance(info.value, CertificateNotPinned)


async def test_unknown_path_is_a_typed_server_error(server):
    transport = Transport(server.url, server.ca_pem)
    try:
        with pytest.raises(ServerError) as info:
            await transport.get_json("/v1/no-such-thing")
    finally:
        await transport.aclose()
    assert info.value.status == 404

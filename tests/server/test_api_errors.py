"""Every refusal uses the envelope: malformed JSON, schema errors, unknown paths, wrong
methods, oversized bodies (declared and streamed)."""

from __future__ import annotations

import json
import logging
import ssl

import httpx
import pytest

from tests.support.clients import new_user_device, signed_request


def _client(server) -> httpx.AsyncClient:
    return httpx.AsyncClient(base_url=server.url, timeout=15,
                             verify=ssl.create_default_context(cafile=str(server.ca_path)))


def _envelope(response: httpx.Response) -> tuple[int, str]:
    body = response.json()
    assert set(body) == {"error"} and set(body["error"]) == {"code", "message"}
    return response.status_code, body["error"]["code"]


async def test_unknown_path_and_wrong_method(server):
    async with _client(server) as client:
        assert _envelope(await client.get("/v1/nothing-here")) == (404, "not_found")
        assert _envelope(await client.delete("/v1/health")) == (405, "method_not_allowed")
        assert _envelope(await client.get("/v1/auth/login")) == (405, "method_not_allowed")


@pytest.mark.parametrize("body", [b"{", b"not json", b"\xff\xfe", b'{"a": }'])
async def test_malformed_json_is_400(open_server, body):
    _, dev = await new_user_device(open_server, "alice")
    try:
        response = await signed_request(dev, "POST", "/v1/keys/claim", body)
        assert _envelope(response) == (400, "malformed")
        assert body.decode(errors="replace") not in response.text or len(body) < 3
    finally:
        await dev.aclose()


@pytest.mark.parametrize("body", [
    b"[]", b"null", b'{"device_ids": "x"}', b'{"device_ids": []}',
    b'{"device_ids": ["AAAAAAAAAAAAAAAAAAAAAA"], "extra": 1}',
    b'{"device_ids": ["../../etc/passwd"]}',
])
async def test_schema_violations_are_422_and_do_not_echo_input(open_server, body):
    _, dev = await new_user_device(open_server, "alice")
    try:
        response = await signed_request(dev, "POST", "/v1/keys/claim", body)
        assert _envelope(response) == (422, "malformed")
        assert "passwd" not in response.text
    finally:
        await dev.aclose()


async def test_login_validation_does_not_echo_the_password(open_server):
    _, dev = await new_user_device(open_server, "alice")
    try:
        secret = "Sup3r-secret-password"
        body = json.dumps({"username": "alice", "password": secret, "totp_code": "12ab56"})
        response = await signed_request(dev, "POST", "/v1/auth/login", body.encode(), token="")
        assert _envelope(response) == (422, "malformed")
        assert secret not in response.text and "12ab56" not in response.text
    finally:
        await dev.aclose()


async def test_declared_oversize_body_is_413_before_anything_else(server):
    limit = server.settings.max_body_bytes
    async with _client(server) as client:
        response = await client.post("/v1/auth/login", content=b"x" * (limit + 1),
                                     headers={"Content-Type": "application/json"})
        assert _envelope(response) == (413, "too_large")


async def test_streamed_oversize_body_is_413(server):
    limit = server.settings.max_body_bytes

    async def chunks():
        for _ in range(limit // 65536 + 2):
            yield b"x" * 65536

    async with _client(server) as client:
        response = await client.post("/v1/auth/login", content=chunks(),
                                     headers={"Content-Type": "application/json"})
        assert "content-length" not in response.request.headers  # really chunked
        assert _envelope(response) == (413, "too_large")


async def test_body_just_under_the_limit_is_parsed(server):
    limit = server.settings.max_body_bytes
    padding = "a" * (limit - 200)
    async with _client(server) as client:
        response = await client.post(
            "/v1/auth/login", content=json.dumps({"pad": padding}).encode(),
            headers={"Content-Type": "application/json"})
        # Parsed and refused for what it is (no device proof), not for its size.
        assert response.status_code == 401


async def test_unexpected_exception_is_a_bare_500_envelope(server):
    def explode() -> None:
        raise RuntimeError("secret detail: patient Jane Doe")

    server.app.add_api_route("/v1/test-explode", explode, methods=["GET"])
    records: list[logging.LogRecord] = []
    handler = logging.Handler()
    handler.emit = records.append  # type: ignore[method-assign]
    loggers = [logging.getLogger(n) for n in ("uvicorn.error", "server_stub.errors", "")]
    for logger in loggers:
        logger.addHandler(handler)
    try:
        async with _client(server) as client:
            response = await client.get("/v1/test-explode")
    finally:
        for logger in loggers:
            logger.removeHandler(handler)
    assert _envelope(response) == (500, "internal")
    assert "Jane" not in response.text and "secret" not in response.text
    assert any("RuntimeError" in r.getMessage() for r in records)
    logged = "".join(r.getMessage() + str(r.exc_info) + str(r.exc_text) for r in records)
    assert "Jane" not in logged

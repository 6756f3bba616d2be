"""Property-based run over every operation in the server's /openapi.json: generated
requests, signed with a real device proof and bearer token, sent over real TLS, must never
get a 5xx, and every refusal must use the error envelope.

Schemathesis generates the cases; the requests are made here (not by ``case.call``) because
the proof must sign the exact bytes that are sent.
"""

from __future__ import annotations

import asyncio
import json
import os
import ssl
import urllib.parse

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.core import NOT_SET

from tests.support.clients import new_user_device
from tests.support.server import start_server

# Ending the fuzzing device's session would turn every later case into a plain 401.
SKIP = {("POST", "/v1/auth/logout")}
EXAMPLES = int(os.environ.get("SC_FUZZ_EXAMPLES", "10"))


@pytest.fixture(scope="module")
def fuzz_target(tmp_path_factory):
    server = start_server(tmp_path_factory.mktemp("fuzz") / "server",
                          require_device_approval=False, login_backoff_base_ms=0,
                          turn_secret="fuzz-secret")

    async def make_device():
        _, device = await new_user_device(server, "fuzzer", role="it_admin")
        await device.aclose()
        return device

    device = asyncio.run(make_device())
    client = httpx.Client(base_url=server.url, timeout=30,
                          verify=ssl.create_default_context(cafile=str(server.ca_path)))
    yield server, device, client
    client.close()
    server.stop()


def _request_target(case) -> str:
    path = case.path
    for name, value in (case.path_parameters or {}).items():
        path = path.replace("{" + name + "}", urllib.parse.quote(str(value), safe=""))
    query = urllib.parse.urlencode(case.query or {}, doseq=True)
    return path + ("?" + query if query else "")


def send(fuzz_target, case, signed: bool = True) -> httpx.Response:
    _, device, client = fuzz_target
    target = _request_target(case)
    body = b"" if case.body is NOT_SET else json.dumps(case.body).encode()
    headers = {"Content-Type": "application/json"}
    if signed:
        token = device.transport.token
        headers["Authorization"] = f"Bearer {token}"
        headers.update(device.transport.signer.proof_headers(case.method, target, body, token))
    return client.request(case.method, target, content=body, headers=headers)


def check(case, response: httpx.Response) -> None:
    assert response.status_code < 500, (case.method, case.path, response.status_code,
                                        response.text[:300])
    if response.status_code >= 400:
        error = response.json()["error"]
        assert isinstance(error["code"], str) and isinstance(error["message"], str)


def fuzz_all_operations(fuzz_target, examples: int, signed: bool = True) -> int:
    server, _, _ = fuzz_target
    schema = schemathesis.openapi.from_dict(server.app.openapi())
    ran = 0
    for result in schema.get_all_operations():
        operation = result.ok()
        if (operation.method.upper(), operation.path) in SKIP:
            continue

        @given(case=operation.as_strategy())
        @settings(max_examples=examples, deadline=None, database=None,
                  suppress_health_check=list(HealthCheck))
        def run(case) -> None:
            check(case, send(fuzz_target, case, signed))

        run()
        ran += 1
    return ran


def test_no_server_errors(fuzz_target):
    """About 25 s on two cores; the slow variant runs 15x more cases."""
    assert fuzz_all_operations(fuzz_target, EXAMPLES) >= 15


def test_no_server_errors_without_credentials(fuzz_target):
    assert fuzz_all_operations(fuzz_target, 3, signed=False) >= 15


@pytest.mark.slow
@pytest.mark.timeout(1800)
def test_no_server_errors_long(fuzz_target):
    fuzz_all_operations(fuzz_target, 150)

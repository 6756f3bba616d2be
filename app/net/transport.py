"""The one HTTPS transport: TLS pinned to the policy's CA, device proof on every request,
server errors turned into typed exceptions with user-safe messages.
"""

from __future__ import annotations

import asyncio
import json
import ssl
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Protocol

import httpx

from app.core.errors import CertificateNotPinned, ConnectionFailed, ServerError


class RequestSigner(Protocol):
    """Adds the device's proof-of-possession headers (docs/protocol.md, "Request proof")."""

    def proof_headers(self, method: str, path: str, body: bytes, token: str) -> dict[str, str]:
        ...


def pinned_ssl_context(ca_pem: str) -> ssl.SSLContext:
    """Trust exactly the pinned CA -- not the system store -- and TLS 1.2 or newer."""
    if "BEGIN CERTIFICATE" not in ca_pem:
        raise CertificateNotPinned("policy has no pinned CA certificate")
    ctx = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cadata=ca_pem)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    return ctx


def is_certificate_error(exc: BaseException) -> bool:
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if isinstance(exc, ssl.SSLCertVerificationError):
            return True
        if "CERTIFICATE_VERIFY_FAILED" in str(exc):
            return True
        exc = exc.__cause__ or exc.__context__  # type: ignore[assignment]
    return False


class Transport:
    def __init__(
        self, base_url: str, ca_pem: str, *, signer: RequestSigner | None = None,
        timeout_s: float = 15.0,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.ssl_context = pinned_ssl_context(ca_pem)
        self.signer = signer
        self.token = ""
        # Called when the server says the access token expired; returns the new one. The
        # lock makes concurrent expiries share one refresh: a second refresh with the
        # already-rotated refresh token would look like theft to the server and end the
        # session.
        self.refresher: Callable[[], Awaitable[str]] | None = None
        self._refresh_lock = asyncio.Lock()
        self._client = httpx.AsyncClient(
            base_url=self.base_url, verify=self.ssl_context, timeout=timeout_s,
            headers={"User-Agent": "SafeConsult"},
        )

    async def aclose(self) -> None:
        await self._client.aclose()

    async def request(
        self, method: str, path: str, *, json_body: Any = None, content: bytes | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> httpx.Response:
        token_used = self.token
        try:
            return await self._send(method, path, json_body, content, headers)
        except ServerError as exc:
            retry = exc.code in ("token_expired", "unauthenticated") and bool(token_used)
            if not retry or self.refresher is None:
                raise
            async with self._refresh_lock:  # waits for a refresh already under way
                if self.token == token_used:
                    if exc.code != "token_expired":
                        raise  # the session really ended
                    self.token = await self.refresher()
        # Either we refreshed, or another request did and our old token was replaced.
        return await self._send(method, path, json_body, content, headers)

    async def _send(
        self, method: str, path: str, json_body: Any, content: bytes | None,
        headers: Mapping[str, str] | None,
    ) -> httpx.Response:
        body = content if content is not None else (
            json.dumps(json_body, separators=(",", ":")).encode() if json_body is not None else b""
        )
        all_headers = dict(headers or {})
        if json_body is not None:
            all_headers["Content-Type"] = "application/json"
        if self.token:
            all_headers["Authorization"] = f"Bearer {self.token}"
        if self.signer is not None:
            all_headers.update(self.signer.proof_headers(method, path, body, self.token))
        try:
            response = await self._client.request(method, path, content=body, headers=all_headers)
        except httpx.ConnectError as exc:
            if is_certificate_error(exc):
                raise CertificateNotPinned(f"TLS verification failed for {self.base_url}") from None
            raise ConnectionFailed(f"cannot connect to {self.base_url}") from None
        except httpx.TimeoutException:
            raise ConnectionFailed(f"timed out talking to {self.base_url}") from None
        except httpx.TransportError as exc:
            raise ConnectionFailed(f"{exc.__class__.__name__} talking to {self.base_url}") from None
        if response.status_code >= 400:
            raise _server_error(response)
        return response

    async def get_json(self, path: str) -> Any:
        return (await self.request("GET", path)).json()

    async def post_json(self, path: str, body: Any) -> Any:
        response = await self.request("POST", path, json_body=body)
        return response.json() if response.content else None


def _server_error(response: httpx.Response) -> ServerError:
    """Protocol errors are ``{"error": {"code": ..., "message": ...}}``; anything else is
    reported by status alone (its text may be a proxy's page)."""
    code, message = f"http_{response.status_code}", ""
    try:
        data = response.json()
        err = data.get("error") if isinstance(data, dict) else None
        if isinstance(err, dict):
            code = str(err.get("code", code))[:64]
            message = str(err.get("message", ""))[:300]
    except ValueError:
        pass
    return ServerError(response.status_code, code, message)

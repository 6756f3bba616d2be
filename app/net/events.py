"""The push WebSocket (docs/protocol.md, "Push"): hints that there is something to fetch.

Pushes never replace polling and sync: a dropped socket loses nothing, the service reconnects
and asks again. Frames are small JSON objects; anything else is ignored.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import websockets
from websockets.asyncio.client import connect

from app.core.errors import CertificateNotPinned, ConnectionFailed
from app.net.transport import Transport, is_certificate_error

PATH = "/v1/ws"
MAX_FRAME = 1_048_576


@dataclass(frozen=True)
class Closed:
    """The server closed the socket on purpose (e.g. 4403 device_revoked)."""

    code: int
    reason: str


async def push_frames(transport: Transport) -> AsyncIterator[dict[str, Any] | Closed]:
    """Yield the frames of one push connection, then a :class:`Closed` if the server ended it.

    Raises :class:`ConnectionFailed` when the connection cannot be made or drops.
    """
    url = "wss://" + transport.base_url.split("://", 1)[1] + PATH
    headers = {"Authorization": f"Bearer {transport.token}"} if transport.token else {}
    if transport.signer is not None:
        headers.update(transport.signer.proof_headers("GET", PATH, b"", transport.token))
    try:
        async with connect(
            url, ssl=transport.ssl_context, additional_headers=headers, open_timeout=10,
            max_size=MAX_FRAME, ping_interval=20, ping_timeout=20,
            user_agent_header="SafeConsult",
        ) as socket:
            try:
                async for text in socket:
                    # Under load the server packs several pushes into one frame, one JSON
                    # object per line.
                    for line in str(text).split("\n"):
                        try:
                            frame = json.loads(line)
                        except ValueError:
                            continue
                        if isinstance(frame, dict) and isinstance(frame.get("type"), str):
                            yield frame
            except websockets.ConnectionClosedOK:
                pass
            except websockets.ConnectionClosedError as exc:
                if exc.rcvd is None:
                    raise ConnectionFailed("push connection dropped") from None
            rcvd = socket.close_code, socket.close_reason
            if rcvd[0] is not None and rcvd[0] >= 4000:
                yield Closed(rcvd[0], rcvd[1] or "")
    except websockets.InvalidStatus as exc:
        raise ConnectionFailed(f"push refused ({exc.response.status_code})") from None
    except (OSError, websockets.WebSocketException, TimeoutError) as exc:
        if is_certificate_error(exc):
            raise CertificateNotPinned("push: TLS verification failed") from None
        raise ConnectionFailed(f"push connection failed ({exc.__class__.__name__})") from None

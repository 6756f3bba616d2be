"""The reference for the relay benchmark: a bare ``websockets`` broadcast server.

No authentication, no storage, no JSON handling: the first frame of a connection says what
it is ("member", "idle" or "sender"); every frame a sender sends is broadcast as is to all
members with ``websockets.broadcast`` (frames encoded once, written without awaiting). It
runs with the same TLS certificate as the relay, so both pay for TLS.

    python tests/bench/ws_reference_server.py CERT KEY READY_FILE
"""

from __future__ import annotations

import asyncio
import json
import os
import ssl
import sys

from websockets.asyncio.server import broadcast, serve

members: set = set()


async def handler(ws) -> None:
    role = await ws.recv()
    if role == "member":
        members.add(ws)
    try:
        async for message in ws:
            if role == "sender":
                broadcast(members, message)
    finally:
        members.discard(ws)


async def main(cert: str, key: str, ready_file: str) -> None:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.load_cert_chain(cert, key)
    async with serve(handler, "127.0.0.1", 0, ssl=ctx, backlog=2048, max_size=1 << 20,
                     compression=None) as server:
        port = server.sockets[0].getsockname()[1]
        tmp = ready_file + ".tmp"
        with open(tmp, "w") as fh:
            json.dump({"port": port, "pid": os.getpid()}, fh)
        os.replace(tmp, ready_file)
        await asyncio.Future()


if __name__ == "__main__":
    asyncio.run(main(*sys.argv[1:4]))

"""Run the server with uvicorn over TLS, on a given port or a free one."""

from __future__ import annotations

import asyncio
import json
import os
import socket
from pathlib import Path

import uvicorn

from server_stub.core import gc_policy
from server_stub.core.config import ServerSettings
from server_stub.main import create_app
from server_stub.tls import ensure_tls, server_ssl_context


def bind_socket(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # IPPROTO_TCP explicitly: asyncio sets TCP_NODELAY on accepted sockets only when the
    # listener's proto says TCP; with proto 0, Nagle + delayed ACK add ~40 ms per response.
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


def build_server(settings: ServerSettings, sock: socket.socket) -> uvicorn.Server:
    files = ensure_tls(settings.data_dir)
    config = uvicorn.Config(
        create_app(settings), ssl_certfile=str(files.cert), ssl_keyfile=str(files.key),
        log_level="warning", access_log=False, ws_max_size=settings.max_chunk_bytes,
        # Pushes carry ciphertext: compressing it costs CPU and saves nothing.
        ws_per_message_deflate=False,
        lifespan="on", timeout_graceful_shutdown=2,
    )
    config.load()
    # uvicorn builds its own context; replace it with ours (TLS 1.2+ only).
    config.ssl = server_ssl_context(files)
    return uvicorn.Server(config)


def write_ready_file(path: Path, host: str, port: int) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps({"url": f"https://{host}:{port}", "port": port, "pid": os.getpid()}))
    os.replace(tmp, path)


def serve(settings: ServerSettings, ready_file: Path | None = None) -> None:
    gc_policy.manage()  # full collections between pushes, not inside them
    sock = bind_socket(settings.host, settings.port)
    port = sock.getsockname()[1]
    server = build_server(settings, sock)

    async def main() -> None:
        task = asyncio.create_task(server.serve(sockets=[sock]))
        while not server.started and not task.done():
            await asyncio.sleep(0.02)
        if server.started:
            print(f"SafeConsult server listening on https://{settings.host}:{port}", flush=True)
            if ready_file is not None:
                write_ready_file(ready_file, settings.host, port)
        await task

    asyncio.run(main())

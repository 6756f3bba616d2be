"""The reference server, in-process, on a free loopback port, with real TLS."""

from __future__ import annotations

import asyncio
import threading
import time
from dataclasses import dataclass, replace
from pathlib import Path

from server_stub.core.config import ServerSettings
from server_stub.serve import bind_socket, build_server
from server_stub.tls import tls_files


@dataclass
class RunningServer:
    url: str
    port: int
    data_dir: Path
    settings: ServerSettings
    app: object
    _server: object
    _thread: threading.Thread

    @property
    def ca_pem(self) -> str:
        return tls_files(self.data_dir).ca_cert.read_text()

    @property
    def ca_path(self) -> Path:
        return tls_files(self.data_dir).ca_cert

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=10)


def start_server(data_dir: Path, **overrides) -> RunningServer:
    settings = replace(ServerSettings(data_dir=data_dir, port=0), **overrides)
    sock = bind_socket(settings.host, 0)
    port = sock.getsockname()[1]
    server = build_server(settings, sock)
    errors: list[BaseException] = []

    def run() -> None:
        try:
            asyncio.run(server.serve(sockets=[sock]))
        except BaseException as exc:  # reported to the test below
            errors.append(exc)

    thread = threading.Thread(target=run, name="reference-server", daemon=True)
    thread.start()
    deadline = time.monotonic() + 15
    while not server.started:
        if errors or not thread.is_alive():
            raise RuntimeError(f"server failed to start: {errors!r}")
        if time.monotonic() > deadline:
            raise TimeoutError("server did not start in 15 s")
        time.sleep(0.01)
    return RunningServer(
        url=f"https://{settings.host}:{port}", port=port, data_dir=data_dir, settings=settings,
        app=server.config.app, _server=server, _thread=thread,
    )

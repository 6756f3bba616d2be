"""The update repository's files over the one pinned TLS configuration.

python-tuf's updater asks a *fetcher* for bytes and verifies everything itself; this fetcher
gives it the server's files over TLS pinned to the policy's CA (never the system store),
with size limits enforced by the updater. Synchronous (the updater is): the update service
runs it in a worker thread.
"""

from __future__ import annotations

from collections.abc import Iterator

import httpx
from tuf.api import exceptions
from tuf.ngclient import FetcherInterface

from app.net.transport import pinned_ssl_context

METADATA_PATH = "/updates/metadata/"
TARGETS_PATH = "/updates/targets/"


def metadata_url(server_url: str) -> str:
    return server_url.rstrip("/") + METADATA_PATH


def targets_url(server_url: str) -> str:
    return server_url.rstrip("/") + TARGETS_PATH


class PinnedFetcher(FetcherInterface):
    """Downloads for python-tuf over TLS pinned to ``ca_pem``."""

    def __init__(self, ca_pem: str, *, timeout_s: float = 30.0) -> None:
        self._client = httpx.Client(verify=pinned_ssl_context(ca_pem), timeout=timeout_s,
                                    headers={"User-Agent": "SafeConsult-updater"})

    def close(self) -> None:
        self._client.close()

    def _fetch(self, url: str) -> Iterator[bytes]:
        request = self._client.build_request("GET", url)
        response = self._client.send(request, stream=True)
        if response.status_code != 200:
            response.close()
            raise exceptions.DownloadHTTPError(f"HTTP {response.status_code}",
                                               response.status_code)
        return self._chunks(response)

    @staticmethod
    def _chunks(response: httpx.Response) -> Iterator[bytes]:
        try:
            yield from response.iter_bytes(65536)
        finally:
            response.close()

"""TEST-ONLY keyring backend: an in-memory ``keyring`` backend for tests and demos.

It is a real :class:`keyring.backend.KeyringBackend`, so code under test goes through the same
``keyring`` calls as in production (select it with ``keyring.set_keyring(...)``). It is not
viable for keyring's automatic selection (its priority raises), and
:func:`app.security.keystore.check_backend` accepts it only with ``allow_test_backend=True``.
"""

from __future__ import annotations

import threading

from keyring.backend import KeyringBackend
from keyring.compat import properties
from keyring.errors import PasswordDeleteError


class InMemoryTestKeyring(KeyringBackend):
    """TEST-ONLY. Secrets in a dict; gone when the process ends."""

    safeconsult_test_only = True

    @properties.classproperty
    def priority(cls) -> float:
        # Raising makes keyring treat the class as not viable, so it is never auto-selected.
        raise RuntimeError("test-only keyring: select explicitly with keyring.set_keyring")

    def __init__(self) -> None:
        super().__init__()
        self._data: dict[tuple[str, str], str] = {}
        self._lock = threading.Lock()

    def __str__(self) -> str:
        return "InMemoryTestKeyring (test only)"

    def get_password(self, service: str, username: str) -> str | None:
        with self._lock:
            return self._data.get((service, username))

    def set_password(self, service: str, username: str, password: str) -> None:
        with self._lock:
            self._data[(service, username)] = password

    def delete_password(self, service: str, username: str) -> None:
        with self._lock:
            if self._data.pop((service, username), None) is None:
                raise PasswordDeleteError("no such entry")

    def entries(self) -> list[tuple[str, str]]:
        """(service, username) pairs held -- for tests that check nothing is left."""
        with self._lock:
            return sorted(self._data)

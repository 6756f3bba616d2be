"""Where the cache key, the account pickle key and the rollback counter live.

Two implementations of one interface (:class:`KeyStore`):

* :class:`KeyringKeyStore` -- the OS keyring (Windows Credential Locker, macOS Keychain,
  Secret Service / KWallet) through ``keyring``. It refuses to start when the machine has
  no real backend: keyring's ``fail``/``null`` backends, an empty chainer and anything not
  on the allow-list (e.g. keyrings.alt's plaintext file) raise :class:`NoSecureKeyStorage`.
  There is deliberately no fallback: a key in a plaintext file next to the cache would make
  the cache's encryption decorative.
* :class:`MemoryKeyStore` -- kiosk mode: keys live in this process only, so a crash or a
  power cut leaves the on-disk cache unreadable.

Entries are per (user, device) under service ``SafeConsult``; the keyring "username" is
``<device_id>|<entry>|<user_id>``. The device id is URL-safe base64 (no ``|``) and the entry
names are fixed, so the user id can contain anything without two pairs colliding.
"""

from __future__ import annotations

import secrets
import threading
from collections.abc import Iterable
from typing import Protocol

import keyring
import keyring.errors
from keyring.backend import KeyringBackend
from keyring.backends.chainer import ChainerBackend

from app.core.errors import SafeConsultError

SERVICE = "SafeConsult"
KEY_BYTES = 32

CACHE_KEY = "cache-key"
PICKLE_KEY = "pickle-key"
GENERATION = "generation"
TOKEN = "token"  # noqa: S105 -- an entry name, not a secret; the session's refresh token, so a wipe takes it with the keys
ENTRIES = (CACHE_KEY, PICKLE_KEY, GENERATION, TOKEN)

# Backends that keep secrets in an OS-protected store. Named by module and class so that
# importing this module does not import (or initialise) platform backends.
OS_BACKENDS = frozenset(
    {
        "keyring.backends.Windows.WinVaultKeyring",
        "keyring.backends.macOS.Keyring",
        "keyring.backends.SecretService.Keyring",
        "keyring.backends.libsecret.Keyring",
        "keyring.backends.kwallet.DBusKeyring",
        "keyring.backends.kwallet.DBusKeyringKWallet4",
    }
)

# Test doubles (app.security.testing, tests/) set this class attribute; they are accepted
# only when the caller passes allow_test_backend=True, which production code never does.
TEST_ONLY_MARK = "safeconsult_test_only"


class KeyStoreError(SafeConsultError):
    user_message = "This workstation's secure key storage could not be used. Contact IT."


class NoSecureKeyStorage(KeyStoreError):
    user_message = (
        "No secure key storage exists on this machine (no OS keyring is available), so "
        "SafeConsult cannot keep patient data here. Contact IT, or use kiosk mode."
    )


class KeyStore(Protocol):
    """Secrets for one user on one device. Keys are 32 random bytes, made on first use."""

    user_id: str
    device_id: str

    def cache_key(self) -> bytes: ...
    def new_cache_key(self) -> bytes:
        """Replace the cache key with a fresh one (a new cache file gets a new key)."""
        ...
    def pickle_key(self) -> bytes: ...
    def has_cache_key(self) -> bool: ...
    def generation(self) -> int: ...
    def set_generation(self, value: int) -> None: ...
    def token(self) -> str | None: ...
    def set_token(self, value: str | None) -> None: ...
    def destroy(self) -> None:
        """Remove every entry: the crypto-erase of everything encrypted under them."""
        ...


def backend_name(backend: KeyringBackend) -> str:
    cls = type(backend)
    return f"{cls.__module__}.{cls.__qualname__}"


def _leaves(backend: KeyringBackend) -> list[KeyringBackend]:
    if isinstance(backend, ChainerBackend):
        return list(backend.backends)
    return [backend]


def check_backend(backend: KeyringBackend, *, allow_test_backend: bool = False) -> None:
    """Raise :class:`NoSecureKeyStorage` unless every store ``backend`` may write to is real.

    A chainer is accepted only when all its members are: it writes to the first that takes
    the secret, which could be a plaintext one.
    """
    leaves = _leaves(backend)
    if not leaves:
        raise NoSecureKeyStorage("keyring has no backend (chainer is empty)")
    for leaf in leaves:
        name = backend_name(leaf)
        if name in OS_BACKENDS:
            continue
        if allow_test_backend and getattr(type(leaf), TEST_ONLY_MARK, False):
            continue
        raise NoSecureKeyStorage(f"keyring backend {name} is not an OS secure store")


def _entry(device_id: str, entry: str, user_id: str) -> str:
    if not device_id or "|" in device_id:
        raise ValueError("device_id must be non-empty and contain no '|'")
    if not user_id:
        raise ValueError("user_id must be non-empty")
    return f"{device_id}|{entry}|{user_id}"


def _parse_key(text: str, entry: str) -> bytes:
    try:
        key = bytes.fromhex(text)
    except ValueError:
        key = b""
    if len(key) != KEY_BYTES:
        raise KeyStoreError(f"keyring entry {entry} is malformed")
    return key


class KeyringKeyStore:
    """Secrets in the OS keyring. Use :meth:`open`, which checks the backend first."""

    def __init__(self, backend: KeyringBackend, user_id: str, device_id: str) -> None:
        self._backend = backend
        self.user_id = user_id
        self.device_id = device_id
        _entry(device_id, CACHE_KEY, user_id)  # validate the names once, early
        self._lock = threading.Lock()

    @classmethod
    def open(
        cls, user_id: str, device_id: str, *, backend: KeyringBackend | None = None,
        allow_test_backend: bool = False,
    ) -> KeyringKeyStore:
        backend = backend if backend is not None else keyring.get_keyring()
        check_backend(backend, allow_test_backend=allow_test_backend)
        return cls(backend, user_id, device_id)

    def _get(self, entry: str) -> str | None:
        try:
            return self._backend.get_password(SERVICE, _entry(self.device_id, entry, self.user_id))
        except keyring.errors.KeyringError as exc:
            raise KeyStoreError(f"keyring read failed ({exc.__class__.__name__})") from None

    def _set(self, entry: str, value: str) -> None:
        try:
            self._backend.set_password(
                SERVICE, _entry(self.device_id, entry, self.user_id), value,
            )
        except keyring.errors.KeyringError as exc:
            raise KeyStoreError(f"keyring write failed ({exc.__class__.__name__})") from None

    def _delete(self, entry: str) -> None:
        try:
            self._backend.delete_password(SERVICE, _entry(self.device_id, entry, self.user_id))
        except keyring.errors.PasswordDeleteError:
            pass  # already gone: destroy() must be idempotent for a resumed wipe
        except keyring.errors.KeyringError as exc:
            raise KeyStoreError(f"keyring delete failed ({exc.__class__.__name__})") from None

    def _new_key(self, entry: str) -> bytes:
        key = secrets.token_bytes(KEY_BYTES)
        self._set(entry, key.hex())
        # Read back: a backend that silently drops writes would lose the cache.
        if self._get(entry) != key.hex():
            raise KeyStoreError(f"keyring did not keep entry {entry}")
        return key

    def _key(self, entry: str) -> bytes:
        with self._lock:
            text = self._get(entry)
            if text is None:
                return self._new_key(entry)
            return _parse_key(text, entry)

    def cache_key(self) -> bytes:
        return self._key(CACHE_KEY)

    def new_cache_key(self) -> bytes:
        with self._lock:
            return self._new_key(CACHE_KEY)

    def pickle_key(self) -> bytes:
        return self._key(PICKLE_KEY)

    def has_cache_key(self) -> bool:
        return self._get(CACHE_KEY) is not None

    def generation(self) -> int:
        text = self._get(GENERATION)
        if text is None:
            return 0
        try:
            return int(text)
        except ValueError:
            raise KeyStoreError("keyring entry generation is malformed") from None

    def set_generation(self, value: int) -> None:
        self._set(GENERATION, str(int(value)))

    def token(self) -> str | None:
        return self._get(TOKEN)

    def set_token(self, value: str | None) -> None:
        if value is None:
            self._delete(TOKEN)
        else:
            self._set(TOKEN, value)

    def destroy(self) -> None:
        with self._lock:
            for entry in ENTRIES:
                self._delete(entry)


class MemoryKeyStore:
    """Kiosk mode: the same interface, nothing leaves this process's memory."""

    def __init__(self, user_id: str, device_id: str) -> None:
        self.user_id = user_id
        self.device_id = device_id
        self._entries: dict[str, object] = {}
        self._lock = threading.Lock()

    def _key(self, entry: str) -> bytes:
        with self._lock:
            key = self._entries.get(entry)
            if key is None:
                key = self._entries[entry] = secrets.token_bytes(KEY_BYTES)
            assert isinstance(key, bytes)
            return key

    def cache_key(self) -> bytes:
        return self._key(CACHE_KEY)

    def new_cache_key(self) -> bytes:
        with self._lock:
            key = self._entries[CACHE_KEY] = secrets.token_bytes(KEY_BYTES)
            return key

    def pickle_key(self) -> bytes:
        return self._key(PICKLE_KEY)

    def has_cache_key(self) -> bool:
        return CACHE_KEY in self._entries

    def generation(self) -> int:
        value = self._entries.get(GENERATION, 0)
        assert isinstance(value, int)
        return value

    def set_generation(self, value: int) -> None:
        self._entries[GENERATION] = int(value)

    def token(self) -> str | None:
        value = self._entries.get(TOKEN)
        return value if isinstance(value, str) else None

    def set_token(self, value: str | None) -> None:
        if value is None:
            self._entries.pop(TOKEN, None)
        else:
            self._entries[TOKEN] = value

    def destroy(self) -> None:
        # Python cannot zero immutable bytes; dropping the references is what is possible.
        with self._lock:
            self._entries.clear()


def destroy_all(stores: Iterable[KeyStore]) -> int:
    """Destroy each store; returns how many. Used by the wiper."""
    count = 0
    for store in stores:
        store.destroy()
        count += 1
    return count

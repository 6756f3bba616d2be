import keyring
import pytest
from keyring.backend import KeyringBackend
from keyring.backends import chainer, fail, null

from app.security.keystore import (
    OS_BACKENDS,
    SERVICE,
    KeyringKeyStore,
    KeyStoreError,
    MemoryKeyStore,
    NoSecureKeyStorage,
    backend_name,
    check_backend,
)
from app.security.testing import InMemoryTestKeyring


class PlaintextFileLike(KeyringBackend):
    """Stands for keyrings.alt's plaintext backend: viable, positive priority, not an OS store."""

    priority = 0.5

    def get_password(self, service, username):
        return None

    def set_password(self, service, username, password):
        pass

    def delete_password(self, service, username):
        pass


@pytest.fixture
def ring():
    previous = keyring.get_keyring()
    backend = InMemoryTestKeyring()
    keyring.set_keyring(backend)
    yield backend
    keyring.set_keyring(previous)


@pytest.mark.parametrize("backend", [fail.Keyring(), null.Keyring(), PlaintextFileLike()])
def test_refuses_backends_that_are_not_secure(backend):
    with pytest.raises(NoSecureKeyStorage) as info:
        KeyringKeyStore.open("u1", "DEV1", backend=backend, allow_test_backend=True)
    assert "No secure key storage exists on this machine" in info.value.user_message


def test_refuses_empty_chainer(monkeypatch):
    monkeypatch.setattr(chainer.ChainerBackend, "backends", [])
    with pytest.raises(NoSecureKeyStorage):
        check_backend(chainer.ChainerBackend())


def test_refuses_chainer_holding_a_plaintext_store(monkeypatch):
    monkeypatch.setattr(
        chainer.ChainerBackend, "backends", [InMemoryTestKeyring(), PlaintextFileLike()],
    )
    with pytest.raises(NoSecureKeyStorage):
        check_backend(chainer.ChainerBackend(), allow_test_backend=True)


def test_test_backend_needs_explicit_permission(ring):
    with pytest.raises(NoSecureKeyStorage):
        KeyringKeyStore.open("u1", "DEV1")
    KeyringKeyStore.open("u1", "DEV1", allow_test_backend=True)


def test_test_backend_is_never_auto_selected():
    assert not InMemoryTestKeyring.viable


def test_this_machine_default_backend_is_judged():
    # Whatever keyring picked here is accepted exactly when it is (or chains only) OS stores.
    # On a CI machine without a keyring daemon that is keyring's fail backend: refused.
    backend = keyring.get_keyring()
    leaves = backend.backends if isinstance(backend, chainer.ChainerBackend) else [backend]
    if leaves and all(backend_name(b) in OS_BACKENDS for b in leaves):
        KeyringKeyStore.open("u1", "DEV1", backend=backend)
    else:
        with pytest.raises(NoSecureKeyStorage):
            KeyringKeyStore.open("u1", "DEV1", backend=backend)


def test_keys_are_stable_random_and_per_user_device(ring):
    a = KeyringKeyStore.open("alice", "DEV1", allow_test_backend=True)
    assert a.cache_key() == a.cache_key()
    assert len(a.cache_key()) == 32 and len(a.pickle_key()) == 32
    assert a.cache_key() != a.pickle_key()
    b = KeyringKeyStore.open("alice", "DEV2", allow_test_backend=True)
    c = KeyringKeyStore.open("bob", "DEV1", allow_test_backend=True)
    assert len({a.cache_key(), b.cache_key(), c.cache_key()}) == 3
    again = KeyringKeyStore.open("alice", "DEV1", allow_test_backend=True)
    assert again.cache_key() == a.cache_key()
    assert all(service == SERVICE for service, _ in ring.entries())


def test_user_ids_with_separators_do_not_collide(ring):
    a = KeyringKeyStore.open("a|cache-key|b", "DEV1", allow_test_backend=True)
    b = KeyringKeyStore.open("a", "DEV1", allow_test_backend=True)
    assert a.cache_key() != b.cache_key()
    with pytest.raises(ValueError):
        KeyringKeyStore.open("a", "DEV|1", allow_test_backend=True)


def test_generation_token_and_destroy(ring):
    store = KeyringKeyStore.open("alice", "DEV1", allow_test_backend=True)
    assert store.generation() == 0
    store.set_generation(7)
    store.set_token("refresh-abc")
    key = store.cache_key()
    store.pickle_key()
    assert store.generation() == 7 and store.token() == "refresh-abc"
    store.destroy()
    assert ring.entries() == []
    assert not store.has_cache_key() and store.generation() == 0 and store.token() is None
    assert store.cache_key() != key  # a new key: the old cache is crypto-erased
    store.destroy()
    store.destroy()  # idempotent, so an interrupted wipe can run it again


def test_new_cache_key_replaces(ring):
    store = KeyringKeyStore.open("alice", "DEV1", allow_test_backend=True)
    old = store.cache_key()
    new = store.new_cache_key()
    assert new != old and store.cache_key() == new


def test_malformed_entry_is_an_error_not_a_weak_key(ring):
    store = KeyringKeyStore.open("alice", "DEV1", allow_test_backend=True)
    ring.set_password(SERVICE, "DEV1|cache-key|alice", "abcd")
    with pytest.raises(KeyStoreError):
        store.cache_key()


def test_memory_keystore_same_interface_touches_no_keyring(ring):
    store = MemoryKeyStore("alice", "DEV1")
    key = store.cache_key()
    assert store.cache_key() == key and store.has_cache_key()
    store.set_generation(3)
    store.set_token("t")
    assert store.generation() == 3 and store.token() == "t"
    assert ring.entries() == []
    store.destroy()
    assert not store.has_cache_key() and store.token() is None and store.cache_key() != key

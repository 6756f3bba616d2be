"""The cache is bound to the key store of the device that made it."""

import shutil

import pytest

from app.core.messages import CachedMessage
from app.core.phi import Phi
from app.security.keystore import KeyringKeyStore
from app.security.testing import InMemoryTestKeyring
from app.storage.cache import Cache, cache_dir
from app.storage.errors import CacheKeyError
from app.storage.messages import MessageRepository


def store(backend, user="alice", device="DEV1"):
    return KeyringKeyStore.open(user, device, backend=backend, allow_test_backend=True)


def test_data_dir_copied_to_another_machine_does_not_open(tmp_path):
    machine_a, machine_b = InMemoryTestKeyring(), InMemoryTestKeyring()
    data_a, data_b = tmp_path / "a", tmp_path / "b"
    with Cache.open(cache_dir(data_a, "alice", "DEV1"), store(machine_a)) as cache:
        MessageRepository(cache).insert(CachedMessage("!r", "$1", "@s", 1, Phi("secret")))
    shutil.copytree(data_a, data_b)
    # Same user, even the same device id claimed: the other machine's keyring has other keys.
    with pytest.raises(CacheKeyError):
        Cache.open(cache_dir(data_b, "alice", "DEV1"), store(machine_b))
    # Another device identity on the same machine does not open it either.
    with pytest.raises(CacheKeyError):
        Cache.open(cache_dir(data_a, "alice", "DEV1"), store(machine_a, device="DEV2"))
    # The owner still can.
    with Cache.open(cache_dir(data_a, "alice", "DEV1"), store(machine_a)) as cache:
        assert MessageRepository(cache).search("secret")


def test_destroyed_key_store_means_the_cache_is_gone(tmp_path):
    ring = InMemoryTestKeyring()
    directory = cache_dir(tmp_path, "alice", "DEV1")
    Cache.open(directory, store(ring)).close()
    store(ring).destroy()
    assert ring.entries() == []
    with pytest.raises(CacheKeyError):
        Cache.open(directory, store(ring))

import pytest

from app.security.keystore import MemoryKeyStore


@pytest.fixture
def keys():
    return MemoryKeyStore("alice", "DEV1")

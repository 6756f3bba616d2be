import pytest

from app.config import Paths, Policy
from app.security.keystore import KeyringKeyStore
from app.security.testing import InMemoryTestKeyring
from app.services.session import SessionService


class Workstation:
    """One client installation: its own data directory and its own (test) OS keyring."""

    def __init__(self, server, root, *, keyring=None, poll_s: int = 60):
        self.server = server
        self.paths = Paths.under(root)
        self.keyring = keyring or InMemoryTestKeyring()
        self.policy = Policy(server_url=server.url, pinned_ca_pem=server.ca_pem,
                             wipe_poll_interval_s=poll_s)
        self.session = SessionService(self.policy, self.paths, self.keystore_for,
                                      display_name="Ward 7 workstation")

    def keystore_for(self, user: str, device_id: str):
        return KeyringKeyStore.open(user, device_id, backend=self.keyring,
                                    allow_test_backend=True)


@pytest.fixture
def workstation(server, tmp_path):
    """Workstations on the approval-requiring ``server``."""
    return lambda name="ws1", **kwargs: Workstation(server, tmp_path / name, **kwargs)


@pytest.fixture
def open_workstation(open_server, tmp_path):
    """Workstations on ``open_server``: enrollment signs in at once (one TOTP code, no wait)."""
    return lambda name="ws1", **kwargs: Workstation(open_server, tmp_path / name, **kwargs)


@pytest.fixture
async def chat_pair(open_server, tmp_path):
    """Alice and Bob (separate workstations, signed in, chat started) in one room:
    ``({"alice": Client, "bob": Client}, room_id)``."""
    from tests.integration.test_chat import new_client, room_with  # it imports this module

    clients = {"alice": await new_client(open_server, tmp_path, "dr.alice"),
               "bob": await new_client(open_server, tmp_path, "dr.bob")}
    room_id = await room_with(clients["alice"], clients["bob"])
    yield clients, room_id
    for client in clients.values():
        await client.close()

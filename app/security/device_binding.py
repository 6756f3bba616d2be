"""This workstation's enrolled device identity per local user.

One small file per user (named by a hash, so file names carry no usernames) holds the device
id, the server's user id, the enrollment state and the vodozemac account pickle -- encrypted
by vodozemac under the *pickle key*, which lives in the key store (OS keyring; memory in
kiosk mode). A copy of the data directory on another machine, or under another keyring, has
the file but not the key: the identity does not open there.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from app.config import Paths
from app.core.errors import SafeConsultError
from app.core.session import DeviceState
from app.crypto.identity import DeviceIdentity
from app.security.erase import write_durably
from app.security.keystore import KeyStore

KeyStoreFor = Callable[[str, str], KeyStore]
"""(local user, device id) -> key store."""


class BindingError(SafeConsultError):
    user_message = (
        "This workstation's device identity could not be opened (it may have been copied "
        "from another machine). Sign in again to enroll this workstation."
    )


@dataclass
class LocalDevice:
    username: str
    identity: DeviceIdentity
    user_id: str
    state: DeviceState

    @property
    def device_id(self) -> str:
        return self.identity.device_id


class DeviceBindings:
    def __init__(self, paths: Paths, keystore_for: KeyStoreFor) -> None:
        self._dir = paths.data / "devices"
        self._keystore_for = keystore_for

    def _file(self, username: str) -> Path:
        digest = hashlib.sha256(username.strip().lower().encode()).hexdigest()[:24]
        return self._dir / f"{digest}.json"

    def keystore(self, username: str, device_id: str) -> KeyStore:
        return self._keystore_for(username, device_id)

    def load(self, username: str) -> LocalDevice | None:
        """The enrolled device of ``username`` here, or None if there is none."""
        path = self._file(username)
        try:
            record = json.loads(path.read_text())
            device_id, pickled = record["device_id"], record["account"]
            user_id, state = record["user_id"], DeviceState(record["state"])
        except FileNotFoundError:
            return None
        except (OSError, ValueError, KeyError, TypeError):
            raise BindingError("device binding file unreadable") from None
        store = self._keystore_for(username, device_id)
        identity = DeviceIdentity.unpickle(device_id, pickled, store.pickle_key())
        return LocalDevice(username, identity, user_id, state)

    def save(self, device: LocalDevice) -> None:
        store = self._keystore_for(device.username, device.device_id)
        record = {
            "device_id": device.device_id, "user_id": device.user_id,
            "state": device.state.value, "account": device.identity.pickle(store.pickle_key()),
        }
        self._dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        write_durably(self._file(device.username), json.dumps(record).encode())

    def forget(self, username: str) -> None:
        """Remove the binding file (its key store entries are the wiper's business)."""
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self._file(username))

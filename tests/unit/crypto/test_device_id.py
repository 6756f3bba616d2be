import re
from unittest import mock

from app.crypto import identity
from app.crypto.identity import new_device_id

SERVER_PATTERN = re.compile(r"^[A-Za-z0-9_-]{22}$")  # server_stub.models.devices.DeviceId


def test_device_ids_match_the_server_pattern_and_are_distinct():
    ids = {new_device_id() for _ in range(2000)}
    assert len(ids) == 2000
    assert all(SERVER_PATTERN.match(i) for i in ids)
    assert not any(i.startswith("-") for i in ids)


def test_a_draw_that_would_start_with_a_dash_is_redrawn():
    # 0xf8 encodes to "-" as the first URL-safe base64 character.
    draws = iter([b"\xf8" + bytes(15), b"\x00" * 16])
    with mock.patch.object(identity.secrets, "token_bytes", lambda n: next(draws)):
        assert new_device_id() == "A" * 22

"""The client's composition roots verify the machine policy's signature: a policy signed by
a trusted IT key applies; an unsigned one is refused and defaults apply, with the reason."""

import datetime as dt

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from app import main as gui_main
from app.config import Policy, load_policy
from app.security import policy_signing


@pytest.fixture
def it_key(tmp_path, monkeypatch):
    key = Ed25519PrivateKey.generate()
    trusted = tmp_path / "trusted-keys.json"
    trusted.write_bytes(policy_signing.trusted_keys_json(
        {"it-2026": policy_signing.public_key_b64(key)}))
    monkeypatch.setattr(policy_signing, "trusted_keys_path", lambda: trusted)
    return key


def test_signed_policy_applies_with_its_signer(tmp_path, it_key):
    path = tmp_path / "policy.json"
    expires = dt.datetime.now(dt.UTC) + dt.timedelta(days=30)
    path.write_bytes(policy_signing.sign_policy({"kiosk": True, "lock_timeout_s": 120},
                                                it_key, "it-2026", expires))
    loaded = load_policy(path, verify=gui_main._verify_signed_policy)
    assert loaded.problem == ""
    assert loaded.policy.kiosk is True and loaded.policy.lock_timeout_s == 120
    assert loaded.policy.signer == "it-2026"


def test_unsigned_policy_is_refused_by_the_gui_root(tmp_path, it_key):
    path = tmp_path / "policy.json"
    path.write_text('{"kiosk": true}')
    loaded = load_policy(path, verify=gui_main._verify_signed_policy)
    assert loaded.policy == Policy()
    assert loaded.problem


def test_headless_root_refuses_an_unsigned_policy(tmp_path, it_key, monkeypatch):
    from app import config, headless

    path = tmp_path / "policy.json"
    path.write_text('{"kiosk": true}')
    monkeypatch.setattr(config, "system_policy_path", lambda: path)
    args = headless.build_parser().parse_args(["health"])
    assert headless.resolve_policy(args) == Policy()

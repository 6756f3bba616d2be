"""Machine policy: safe defaults, validation, precedence over user settings."""

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from app.config import (
    Paths,
    Policy,
    Settings,
    effective_lock_timeout,
    load_policy,
    system_policy_path,
)
from app.core.errors import PolicyError


def test_defaults_are_the_safe_choice():
    policy = Policy()
    assert policy.server_url.startswith("https://")
    assert policy.lock_timeout_s == 300
    assert policy.offline_grace_s == 8 * 3600
    assert policy.kiosk is False
    assert policy.crypto_suite == "aes-256-gcm"
    assert policy.source == "defaults"


def test_missing_policy_file_means_defaults(tmp_path):
    loaded = load_policy(tmp_path / "absent.json")
    assert loaded.policy == Policy()
    assert loaded.problem == ""


def test_policy_file_overrides_defaults(tmp_path):
    path = tmp_path / "policy.json"
    path.write_text(json.dumps({"kiosk": True, "lock_timeout_s": 120,
                                "server_url": "https://consult.example.org"}))
    loaded = load_policy(path)
    assert loaded.problem == ""
    assert loaded.policy.kiosk is True
    assert loaded.policy.lock_timeout_s == 120
    assert loaded.policy.server_url == "https://consult.example.org"
    assert loaded.policy.source == str(path)
    assert loaded.policy.wipe_poll_interval_s == Policy().wipe_poll_interval_s


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        (b"{not json", "not valid JSON"),
        (b"[1, 2]", "JSON object"),
        (b'{"lock_timeout_s": "300"}', "must be int"),
        (b'{"kiosk": 1}', "must be bool"),
        (b'{"lock_timeout_s": true}', "must be int"),
        (b'{"lock_timeout_s": 5}', "between 30 and 3600"),
        (b'{"server_url": "http://plain.example"}', "https"),
        (b'{"crypto_suite": "rot13"}', "crypto_suite"),
        (b'{"surprise": 1}', "unknown policy settings: surprise"),
        (b"\xff\xfe\x00", "not valid JSON"),
    ],
)
def test_bad_policy_falls_back_to_defaults_and_says_why(tmp_path, content, reason):
    path = tmp_path / "policy.json"
    path.write_bytes(content)
    loaded = load_policy(path)
    assert loaded.policy == Policy()
    assert loaded.policy.source == "defaults"
    assert reason in loaded.problem


def test_a_verifier_refusal_means_defaults(tmp_path):
    path = tmp_path / "policy.json"
    path.write_text(json.dumps({"kiosk": True}))

    def refuse(raw: bytes):
        raise PolicyError("signature does not verify")

    loaded = load_policy(path, verify=refuse)
    assert loaded.policy.kiosk is False
    assert "signature does not verify" in loaded.problem


def test_verifier_signer_is_reported(tmp_path):
    path = tmp_path / "policy.json"
    path.write_text("ignored")
    loaded = load_policy(path, verify=lambda raw: ({"kiosk": True}, "IT key 4f2a"))
    assert loaded.policy.kiosk is True
    assert loaded.policy.signer == "IT key 4f2a"


@given(st.binary(max_size=300))
def test_any_bytes_give_a_policy_never_an_exception(tmp_path_factory, data):
    path = tmp_path_factory.mktemp("p") / "policy.json"
    path.write_bytes(data)
    loaded = load_policy(path)
    assert isinstance(loaded.policy, Policy)


def test_user_may_lock_sooner_never_later():
    policy = Policy(lock_timeout_s=300)
    assert effective_lock_timeout(policy, Settings()) == 300
    assert effective_lock_timeout(policy, Settings(lock_timeout_s=120)) == 120
    assert effective_lock_timeout(policy, Settings(lock_timeout_s=3000)) == 300
    assert effective_lock_timeout(policy, Settings(lock_timeout_s=1)) == 30


def test_settings_round_trip_and_tolerate_garbage(tmp_path):
    path = Paths.under(tmp_path).settings_file()
    Settings(language="zh_CN", theme="dark").save(path)
    assert Settings.load(path) == Settings(language="zh_CN", theme="dark")
    path.write_text("{broken")
    assert Settings.load(path) == Settings()
    path.write_text('{"language": "en", "unknown": 3}')
    assert Settings.load(path).language == "en"


def test_system_policy_path_is_machine_wide():
    assert system_policy_path().name == "policy.json"
    assert "safeconsult" in str(system_policy_path()).lower()

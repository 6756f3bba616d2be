"""The IT policy tool: keygen -> sign -> verify as real processes, and its refusals."""

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from app.config import load_policy
from app.security.policy_signing import load_trusted_keys, make_policy_verifier
from app.tools.policy import main

ROOT = Path(__file__).resolve().parents[3]
POLICY = {"server_url": "https://consult.example:8443", "kiosk": True, "lock_timeout_s": 90}


def run_tool(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-m", "app.tools.policy", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=60)


def keygen(tmp_path: Path, key_id: str) -> tuple[Path, Path]:
    assert main(["keygen", "--out", str(tmp_path / "keys"), "--key-id", key_id]) == 0
    return tmp_path / "keys" / f"{key_id}.key", tmp_path / "keys" / f"{key_id}.pub"


def test_keygen_sign_verify_round_trip_as_processes(tmp_path):
    done = run_tool("keygen", "--out", "keys", "--key-id", "it-2026", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    priv, pub = tmp_path / "keys" / "it-2026.key", tmp_path / "keys" / "it-2026.pub"
    if os.name == "posix":
        assert stat.S_IMODE(priv.stat().st_mode) == 0o600
    assert b"PRIVATE KEY" in priv.read_bytes() and b"PRIVATE" not in pub.read_bytes()

    done = run_tool("trust", "trusted-keys.json", "--add", str(pub), "--key-id", "it-2026",
                    cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    (tmp_path / "policy.json").write_text(json.dumps(POLICY))
    done = run_tool("sign", "policy.json", "--key", str(priv), "--key-id", "it-2026",
                    "--expires-days", "30", "--out", "signed.json", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    done = run_tool("verify", "signed.json", "--trusted", "trusted-keys.json", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "signed by it-2026" in done.stdout

    # What the tool wrote is what the client accepts.
    verify = make_policy_verifier(load_trusted_keys(tmp_path / "trusted-keys.json"))
    loaded = load_policy(tmp_path / "signed.json", verify=verify)
    assert loaded.problem == "" and loaded.policy.lock_timeout_s == 90

    # One edited value: refused, exit 1, the reason on stderr.
    signed = tmp_path / "signed.json"
    signed.write_bytes(signed.read_bytes().replace(b'"lock_timeout_s":90', b'"lock_timeout_s":99'))
    done = run_tool("verify", "signed.json", "--trusted", "trusted-keys.json", cwd=tmp_path)
    assert done.returncode == 1 and "signature does not verify" in done.stderr


def test_keygen_never_overwrites_a_key(tmp_path, capsys):
    keygen(tmp_path, "it")
    assert main(["keygen", "--out", str(tmp_path / "keys"), "--key-id", "it"]) == 2
    assert "not overwriting" in capsys.readouterr().err


def test_keygen_default_id_names_the_fingerprint(tmp_path, capsys):
    assert main(["keygen", "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    key_id = out.split("key id:")[1].split()[0]
    assert key_id.startswith("it-") and (tmp_path / f"{key_id}.key").exists()


def test_sign_refuses_a_policy_the_client_would_refuse(tmp_path, capsys):
    priv, _ = keygen(tmp_path, "it")
    (tmp_path / "p.json").write_text(json.dumps({"lock_timeout_s": 5, "typo": 1}))
    assert main(["sign", str(tmp_path / "p.json"), "--key", str(priv), "--key-id", "it",
                 "--out", str(tmp_path / "s.json")]) == 2
    err = capsys.readouterr().err
    assert "the client would refuse this policy" in err and "typo" in err
    assert not (tmp_path / "s.json").exists()


def test_sign_refuses_a_bad_expiry_and_a_missing_key(tmp_path, capsys):
    (tmp_path / "p.json").write_text("{}")
    base = ["sign", str(tmp_path / "p.json"), "--key-id", "it", "--out", str(tmp_path / "s")]
    assert main([*base, "--key", str(tmp_path / "nope"), "--expires-days", "0"]) == 2
    assert "--expires-days" in capsys.readouterr().err
    assert main([*base, "--key", str(tmp_path / "nope")]) == 2
    assert "cannot read private key" in capsys.readouterr().err


def test_verify_names_an_unknown_signer_and_an_expired_policy(tmp_path, capsys):
    priv, pub = keygen(tmp_path, "old")
    _, new_pub = keygen(tmp_path, "new")
    trusted = tmp_path / "trusted.json"
    assert main(["trust", str(trusted), "--add", str(new_pub), "--key-id", "new"]) == 0
    (tmp_path / "p.json").write_text(json.dumps(POLICY))
    assert main(["sign", str(tmp_path / "p.json"), "--key", str(priv), "--key-id", "old",
                 "--out", str(tmp_path / "s.json")]) == 0
    capsys.readouterr()
    assert main(["verify", str(tmp_path / "s.json"), "--trusted", str(trusted)]) == 1
    assert "unknown key 'old'" in capsys.readouterr().err
    # Rotation: trust old and new, then retire old.
    assert main(["trust", str(trusted), "--add", str(pub), "--key-id", "old"]) == 0
    assert main(["verify", str(tmp_path / "s.json"), "--trusted", str(trusted)]) == 0
    assert main(["trust", str(trusted), "--remove", "old"]) == 0
    assert set(load_trusted_keys(trusted)) == {"new"}


def test_trust_refuses_to_leave_no_key(tmp_path, capsys):
    _, pub = keygen(tmp_path, "only")
    trusted = tmp_path / "trusted.json"
    assert main(["trust", str(trusted), "--add", str(pub), "--key-id", "only"]) == 0
    assert main(["trust", str(trusted), "--remove", "only"]) == 2
    assert "no trusted key" in capsys.readouterr().err


def test_verify_without_trusted_keys_says_so(tmp_path, capsys):
    (tmp_path / "s.json").write_text("{}")
    assert main(["verify", str(tmp_path / "s.json"), "--trusted", str(tmp_path / "t")]) == 2
    assert "no trusted IT keys" in capsys.readouterr().err


@pytest.mark.parametrize("argv", [[], ["sign"], ["verify"]])
def test_usage_errors_exit_2(argv):
    with pytest.raises(SystemExit) as info:
        main(argv)
    assert info.value.code == 2

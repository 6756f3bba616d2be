"""The release tool: sign a directory and a single file, verify, and the lead's
``verify_release_main`` entry (``safeconsult verify-release ARTIFACT --key PUB``)."""

import os
import subprocess
import sys
from pathlib import Path

from app.tools import policy as policy_tool
from app.tools.release import main, verify_release_main

ROOT = Path(__file__).resolve().parents[3]


def keys(tmp_path: Path) -> tuple[Path, Path]:
    assert policy_tool.main(["keygen", "--out", str(tmp_path / "keys"), "--key-id", "rel"]) == 0
    return tmp_path / "keys" / "rel.key", tmp_path / "keys" / "rel.pub"


def make_dir(tmp_path: Path) -> Path:
    root = tmp_path / "dist" / "SafeConsult"
    (root / "_internal").mkdir(parents=True)
    (root / "SafeConsult").write_bytes(b"binary" * 100)
    (root / "_internal" / "base_library.zip").write_bytes(b"PK" + b"\0" * 50)
    return root


def test_sign_and_verify_round_trip_as_processes(tmp_path):
    priv, pub = keys(tmp_path)
    root = make_dir(tmp_path)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}

    def run(*args):
        return subprocess.run([sys.executable, "-m", "app.tools.release", *args], env=env,
                              capture_output=True, text=True, timeout=60)

    done = run("sign", str(root), "--key", str(priv), "--version", "1.2.3")
    assert done.returncode == 0, done.stderr
    manifest = root.with_name("SafeConsult.manifest.json")
    assert manifest.exists() and manifest.with_name(manifest.name + ".sig").exists()
    done = run("verify", str(root), "--key", str(pub))
    assert done.returncode == 0 and "release 1.2.3 verified: 2 file(s)" in done.stdout

    (root / "_internal" / "base_library.zip").write_bytes(b"PK" + b"\1" * 50)
    done = run("verify", str(root), "--key", str(pub))
    assert done.returncode == 1
    assert "changed file: _internal/base_library.zip" in done.stderr


def test_verify_release_main_single_file(tmp_path, capsys):
    priv, pub = keys(tmp_path)
    deb = tmp_path / "safeconsult_1.0_amd64.deb"
    deb.write_bytes(b"!<arch>\n" + b"d" * 300)
    out = tmp_path / "sigs" / "x.manifest.json"
    out.parent.mkdir()
    assert main(["sign", str(deb), "--key", str(priv), "--out", str(out)]) == 0
    assert verify_release_main([str(deb), "--key", str(pub), "--manifest", str(out)]) == 0
    assert verify_release_main([str(deb), "--key", str(pub), "--manifest", str(out),
                                "--signature", str(out) + ".sig"]) == 0
    capsys.readouterr()
    # Without --manifest the default (next to the artifact) is absent: a clear refusal.
    assert verify_release_main([str(deb), "--key", str(pub)]) == 1
    assert "cannot read" in capsys.readouterr().err


def test_verify_release_main_wrong_key_and_bad_key_file(tmp_path, capsys):
    priv, _ = keys(tmp_path)
    root = make_dir(tmp_path)
    assert main(["sign", str(root), "--key", str(priv)]) == 0
    assert policy_tool.main(["keygen", "--out", str(tmp_path / "other"), "--key-id", "o"]) == 0
    capsys.readouterr()
    assert verify_release_main([str(root), "--key", str(tmp_path / "other" / "o.pub")]) == 1
    assert "wrong key" in capsys.readouterr().err
    assert verify_release_main([str(root), "--key", str(priv)]) == 2  # a private key file
    assert "not an Ed25519 public key" in capsys.readouterr().err


def test_sign_with_a_missing_artifact_is_a_usage_error(tmp_path, capsys):
    priv, _ = keys(tmp_path)
    assert main(["sign", str(tmp_path / "absent"), "--key", str(priv)]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_sign_refuses_to_write_the_manifest_inside_the_release(tmp_path, capsys):
    priv, _ = keys(tmp_path)
    root = make_dir(tmp_path)
    assert main(["sign", str(root), "--key", str(priv), "--out", str(root / "m.json")]) == 2
    assert "write the manifest beside it" in capsys.readouterr().err
    assert not (root / "m.json").exists()

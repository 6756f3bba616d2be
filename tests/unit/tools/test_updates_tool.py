"""``python -m app.tools.updates``: the update repository IT signs (TUF metadata)."""

from __future__ import annotations

import json
import stat

from tuf.api.metadata import Metadata

from app.tools.updates import UpdateRepository, main


def test_init_add_refresh_rotate_from_the_command_line(tmp_path, capsys):
    repo, keys = tmp_path / "repo", tmp_path / "keys"
    assert main(["init", str(repo), "--keys", str(keys)]) == 0
    assert "deploy" in capsys.readouterr().out
    for role in ("root", "targets", "snapshot", "timestamp"):
        assert stat.S_IMODE((keys / f"{role}.pem").stat().st_mode) == 0o600
    build = tmp_path / "safeconsult_0.2.0_amd64.deb"
    build.write_bytes(b"deb" * 1000)
    assert main(["add", str(repo), str(build), "--version", "0.2.0", "--keys", str(keys)]) == 0
    targets = Metadata.from_file(str(repo / "metadata" / "2.targets.json")).signed
    info = targets.targets["linux-deb/0.2.0/safeconsult_0.2.0_amd64.deb"]
    assert info.custom == {"version": "0.2.0", "platform": "linux-deb"}
    stored = repo / "targets" / "linux-deb" / "0.2.0" / f"{info.hashes['sha256']}.{build.name}"
    assert stored.read_bytes() == build.read_bytes()
    before = json.loads((repo / "metadata" / "timestamp.json").read_text())["signed"]["version"]
    assert main(["refresh", str(repo), "--keys", str(keys)]) == 0
    after = json.loads((repo / "metadata" / "timestamp.json").read_text())["signed"]["version"]
    assert after == before + 1
    assert main(["rotate", str(repo), "--role", "root", "--keys", str(keys)]) == 0
    root2 = Metadata.from_file(str(repo / "metadata" / "2.root.json"))
    assert len(root2.signatures) == 2  # the old and the new root key
    root1 = Metadata.from_file(str(repo / "metadata" / "1.root.json"))
    root1.verify_delegate("root", root2)  # the old root vouches for the new
    root2.verify_delegate("root", root2)


def test_refusals_are_clear(tmp_path, capsys):
    repo, keys = tmp_path / "repo", tmp_path / "keys"
    assert main(["refresh", str(repo), "--keys", str(keys)]) == 2
    assert "run init first" in capsys.readouterr().err
    UpdateRepository(repo, keys).init()
    assert main(["init", str(repo), "--keys", str(tmp_path / "k2")]) == 2
    assert "already holds a repository" in capsys.readouterr().err
    build = tmp_path / "a.deb"
    build.write_bytes(b"x")
    assert main(["add", str(repo), str(build), "--version", "1.0-rc1", "--keys", str(keys)]) == 2
    assert "numbers and dots" in capsys.readouterr().err
    assert main(["add", str(repo), str(build), "--version", "1.0", "--keys", str(keys)]) == 0
    assert main(["add", str(repo), str(build), "--version", "1.0", "--keys", str(keys)]) == 2
    assert "never replaced" in capsys.readouterr().err
    assert main(["add", str(repo), str(tmp_path / "none.deb"), "--version", "1.1",
                 "--keys", str(keys)]) == 2
    (keys / "targets.pem").unlink()
    assert main(["refresh", str(repo), "--keys", str(keys)]) == 0  # targets key not needed
    assert main(["add", str(repo), str(build), "--version", "1.2", "--keys", str(keys)]) == 2
    assert "the targets key" in capsys.readouterr().err

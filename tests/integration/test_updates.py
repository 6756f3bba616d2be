"""Verified updates end to end: IT's repository (app.tools.updates) published by the real
reference server over TLS, checked by the client's update service (python-tuf).

Each refusal -- wrong key, tampered artifact, tampered metadata, downgrade, metadata
rollback, stale (expired) timestamp -- must say why, and must stage nothing.
"""

from __future__ import annotations

import json
import shutil
import ssl
from datetime import timedelta
from pathlib import Path

import httpx
import pytest

from app.services.updates import UpdateResult, UpdateService, parse_version
from app.tools.updates import UpdateRepository


@pytest.fixture
def repo(server, tmp_path) -> UpdateRepository:
    repository = UpdateRepository(server.data_dir / "updates", tmp_path / "it-keys")
    repository.init()
    return repository


def artifact(tmp_path: Path, version: str, content: bytes | None = None) -> Path:
    path = tmp_path / "builds" / version / f"safeconsult_{version}_amd64.deb"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content or f"installer {version}".encode() * 100)
    return path


def client(server, repo: UpdateRepository, tmp_path: Path, *, current: str = "0.1.0",
           trust_root: Path | None = None, name: str = "client") -> UpdateService:
    return UpdateService(
        server_url=server.url, ca_pem=server.ca_pem, state_dir=tmp_path / name / "updates",
        trust_root=trust_root or repo.metadata_dir / "1.root.json", current_version=current,
        platform="linux-deb")


def assert_nothing_staged(service: UpdateService) -> None:
    assert service.pending() is None
    staged = service.staged_dir
    assert not staged.exists() or not [p for p in staged.iterdir() if p.is_file()]


def test_a_newer_signed_release_is_downloaded_verified_and_staged(server, repo, tmp_path):
    build = artifact(tmp_path, "0.2.0")
    repo.add(build, "0.2.0")
    service = client(server, repo, tmp_path)
    checked = service.check()
    assert (checked.status, checked.version) == ("available", "0.2.0"), checked.message
    result = service.apply()
    assert result.status == "staged", result.message
    assert result.path is not None and result.path.read_bytes() == build.read_bytes()
    assert service.pending()["version"] == "0.2.0"
    assert "0.2.0 downloaded and verified" in result.message
    # The newest of several releases; other platforms' releases are not ours.
    repo.add(artifact(tmp_path, "0.3.0"), "0.3.0")
    repo.add(artifact(tmp_path, "0.10.0"), "0.10.0", platform="windows-x64")
    assert service.check().version == "0.3.0"
    # Once that release runs, it is current.
    assert client(server, repo, tmp_path, current="0.3.0", name="c2").check().status == "current"


def test_a_downgrade_is_refused_even_when_signed(server, repo, tmp_path):
    repo.add(artifact(tmp_path, "0.0.9"), "0.0.9")
    service = client(server, repo, tmp_path, current="0.1.0")
    result = service.apply()
    assert (result.status, result.reason) == ("refused", "rollback")
    assert "0.0.9, is older than the installed 0.1.0 (no downgrades)" in result.message
    assert_nothing_staged(service)


def test_replayed_older_metadata_is_refused_as_a_rollback(server, repo, tmp_path):
    repo.add(artifact(tmp_path, "0.2.0"), "0.2.0")
    old = tmp_path / "old-repo"
    shutil.copytree(repo.root, old)
    repo.add(artifact(tmp_path, "0.3.0"), "0.3.0")
    service = client(server, repo, tmp_path)
    assert service.check().version == "0.3.0"
    # The server (or someone in the path) serves yesterday's signed metadata again.
    shutil.rmtree(repo.root)
    shutil.copytree(old, repo.root)
    result = service.apply()
    assert (result.status, result.reason) == ("refused", "metadata-rollback"), result.message
    assert "older update metadata than this computer already trusts" in result.message
    assert "timestamp" in result.message
    assert_nothing_staged(service)


def test_stale_timestamp_metadata_is_refused(server, tmp_path):
    # IT's daily re-signing stopped: the timestamp's signature expired an hour ago.
    repo = UpdateRepository(server.data_dir / "updates", tmp_path / "keys",
                            expiry={"timestamp": timedelta(hours=-1)})
    repo.init()
    repo.add(artifact(tmp_path, "0.2.0"), "0.2.0")
    service = client(server, repo, tmp_path)
    result = service.apply()
    assert (result.status, result.reason) == ("refused", "stale"), result.message
    assert "signed update metadata has expired" in result.message
    assert "timestamp" in result.message
    assert_nothing_staged(service)
    # Re-signed with a fresh timestamp: accepted.
    UpdateRepository(repo.root, repo.keys).refresh()
    assert service.apply().status == "staged"


def test_metadata_signed_by_other_keys_is_refused(server, repo, tmp_path):
    repo.add(artifact(tmp_path, "0.2.0"), "0.2.0")
    other = UpdateRepository(tmp_path / "other-repo", tmp_path / "other-keys")
    service = client(server, repo, tmp_path, trust_root=other.init())
    result = service.apply()
    assert (result.status, result.reason) == ("refused", "unsigned"), result.message
    assert "not signed by the keys this computer trusts" in result.message
    assert_nothing_staged(service)


def test_a_tampered_artifact_is_refused(server, repo, tmp_path):
    name = repo.add(artifact(tmp_path, "0.2.0"), "0.2.0")
    stored = next((repo.targets_dir / "linux-deb" / "0.2.0").iterdir())
    data = bytearray(stored.read_bytes())
    data[len(data) // 2] ^= 1  # one bit, same length
    stored.write_bytes(bytes(data))
    service = client(server, repo, tmp_path)
    result = service.apply()
    assert (result.status, result.reason) == ("refused", "tampered"), result.message
    assert "does not match its signed length and SHA-256" in result.message
    assert name.endswith(".deb")
    assert_nothing_staged(service)


def test_tampered_targets_metadata_is_refused(server, repo, tmp_path):
    repo.add(artifact(tmp_path, "0.2.0"), "0.2.0")
    latest = max(repo.metadata_dir.glob("*.targets.json"), key=lambda p: int(p.name.split(".")[0]))
    latest.write_text(latest.read_text().replace('"version": "0.2.0"', '"version": "9.0.0"'))
    service = client(server, repo, tmp_path)
    result = service.check()
    assert (result.status, result.reason) == ("refused", "unsigned"), result.message
    assert "targets" in result.message


def test_clients_follow_key_rotation(server, repo, tmp_path):
    repo.add(artifact(tmp_path, "0.2.0"), "0.2.0")
    early = client(server, repo, tmp_path, name="early")
    assert early.check().status == "available"
    for role in ("timestamp", "targets", "snapshot", "root"):
        repo.rotate(role)
    repo.add(artifact(tmp_path, "0.3.0"), "0.3.0")
    # Both a client that trusted the old root and a new install with the original anchor
    # walk the root chain (each version signed by the previous root keys) to the new keys.
    assert early.check().version == "0.3.0"
    assert client(server, repo, tmp_path, name="fresh").apply().status == "staged"
    assert len(list(repo.keys.glob("*.retired-1.pem"))) == 4


def test_no_trust_root_means_no_update(server, repo, tmp_path):
    service = client(server, repo, tmp_path, trust_root=tmp_path / "missing-root.json")
    result = service.check()
    assert (result.status, result.reason) == ("refused", "no-trust-root")
    assert "update-root.json" in result.message


def test_an_unreachable_server_changes_nothing(repo, tmp_path, server):
    service = client(server, repo, tmp_path)
    server.stop()
    result = service.check()
    assert result.status == "unavailable" and not result.refused
    assert "could not be reached" in result.message


def test_the_server_serves_only_repository_files(server, repo):
    with httpx.Client(verify=ssl.create_default_context(cadata=server.ca_pem)) as http:
        ok = http.get(f"{server.url}/updates/metadata/timestamp.json")
        assert ok.status_code == 200 and ok.headers["cache-control"] == "no-store"
        assert json.loads(ok.content)["signed"]["_type"] == "timestamp"
        for path in ("metadata/..%2Fserver.sqlite3", "metadata/server.sqlite3",
                     "targets/../server.sqlite3", "targets/..%2F..%2Fserver.sqlite3",
                     "metadata/2.timestamp.json", "targets/linux-deb/nothing.deb"):
            assert http.get(f"{server.url}/updates/{path}").status_code == 404, path


def test_versions_compare_as_numbers():
    assert parse_version("0.10.0") > parse_version("0.9.9")
    assert parse_version("1.2") == parse_version("1.2.0")
    for bad in ("1.2.0-rc1", "", "v1", "1..2"):
        with pytest.raises(ValueError):
            parse_version(bad)
    assert UpdateResult("refused", "x").refused

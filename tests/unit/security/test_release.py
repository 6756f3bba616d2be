"""Release manifests: a signed release verifies; one changed byte anywhere, an added file, a
removed file, a wrong key and an altered manifest or signature are each refused by name."""

import json

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from app.security.policy_signing import public_key_b64
from app.security.release import MANIFEST_FORMAT, make_manifest, sign_manifest, verify_release


@pytest.fixture(scope="module")
def key() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.generate()


@pytest.fixture
def release(tmp_path, key):
    root = tmp_path / "safeconsult-1.0"
    (root / "lib" / "app").mkdir(parents=True)
    (root / "safeconsult").write_bytes(b"\x7fELF" + bytes(range(256)) * 40)
    (root / "lib" / "app" / "core.py").write_text("print('hello')\n")
    (root / "lib" / "empty.dat").write_bytes(b"")
    manifest = make_manifest(root, "1.0")
    (tmp_path / "m.json").write_bytes(manifest)
    (tmp_path / "m.json.sig").write_bytes(sign_manifest(manifest, key))
    return root, tmp_path / "m.json", tmp_path / "m.json.sig"


def check(release, key):
    root, manifest, sig = release
    return verify_release(root, manifest, sig, key.public_key())


def test_manifest_lists_every_file_sorted_with_posix_paths(release):
    doc = json.loads(release[1].read_bytes())
    assert doc["format"] == MANIFEST_FORMAT and doc["version"] == "1.0"
    assert [f["path"] for f in doc["files"]] == ["lib/app/core.py", "lib/empty.dat",
                                                 "safeconsult"]
    assert doc["files"][1] == {
        "path": "lib/empty.dat", "size": 0,
        "sha256": "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
    }


def test_manifest_is_deterministic(release):
    assert make_manifest(release[0], "1.0") == release[1].read_bytes()


def test_a_good_release_verifies(release, key):
    report = check(release, key)
    assert report.ok, report.message
    assert report.files_checked == 3 and report.version == "1.0"
    assert "verified" in report.message


def test_the_key_may_be_given_as_base64(release, key):
    root, manifest, sig = release
    assert verify_release(root, manifest, sig, public_key_b64(key)).ok


@pytest.mark.parametrize("offset", [0, 500, -1])
def test_one_changed_byte_anywhere_is_refused_by_name(release, key, offset):
    target = release[0] / "safeconsult"
    data = bytearray(target.read_bytes())
    data[offset] ^= 0x01
    target.write_bytes(bytes(data))
    report = check(release, key)
    assert not report.ok
    assert report.message.startswith("changed file: safeconsult")


def test_an_added_file_is_refused_by_name(release, key):
    (release[0] / "lib" / "app" / "evil.py").write_text("import os\n")
    report = check(release, key)
    assert not report.ok and report.message == "extra file not in the manifest: lib/app/evil.py"


def test_a_removed_file_is_refused_by_name(release, key):
    (release[0] / "lib" / "empty.dat").unlink()
    report = check(release, key)
    assert not report.ok and report.message == "missing file: lib/empty.dat"


def test_several_problems_name_the_first_and_list_all(release, key):
    (release[0] / "lib" / "empty.dat").unlink()
    (release[0] / "zzz").write_text("x")
    report = check(release, key)
    assert report.message == "missing file: lib/empty.dat (and 1 more)"
    assert report.problems == ("missing file: lib/empty.dat",
                               "extra file not in the manifest: zzz")


def test_a_wrong_key_is_refused(release):
    report = check(release, Ed25519PrivateKey.generate())
    assert not report.ok and report.message.startswith("wrong key: the release was signed by key")


def test_an_altered_manifest_is_refused(release, key):
    manifest = release[1]
    manifest.write_bytes(manifest.read_bytes().replace(b'"1.0"', b'"1.1"'))
    report = check(release, key)
    assert not report.ok and report.message.startswith("bad signature")


def test_a_forged_signature_with_the_right_key_id_is_refused(release, key):
    doc = json.loads(release[2].read_bytes())
    forged = json.loads(sign_manifest(release[1].read_bytes(), Ed25519PrivateKey.generate()))
    doc["signature"] = forged["signature"]
    release[2].write_text(json.dumps(doc))
    report = check(release, key)
    assert not report.ok and report.message.startswith("bad signature")


def test_a_malformed_signature_file_is_refused(release, key):
    release[2].write_text("garbage")
    assert "signature file is malformed" in check(release, key).message


def test_a_missing_signature_file_is_refused(release, key):
    release[2].unlink()
    report = check(release, key)
    assert not report.ok and "cannot read" in report.message and "m.json.sig" in report.message


def test_a_single_file_artifact_has_one_entry(tmp_path, key):
    deb = tmp_path / "safeconsult_1.0_amd64.deb"
    deb.write_bytes(b"!<arch>\n" + b"x" * 1000)
    manifest = make_manifest(deb, "1.0")
    assert [f["path"] for f in json.loads(manifest)["files"]] == [deb.name]
    (tmp_path / "m").write_bytes(manifest)
    (tmp_path / "s").write_bytes(sign_manifest(manifest, key))
    assert verify_release(deb, tmp_path / "m", tmp_path / "s", key.public_key()).ok
    deb.write_bytes(deb.read_bytes()[:-1] + b"y")
    report = verify_release(deb, tmp_path / "m", tmp_path / "s", key.public_key())
    assert report.message.startswith(f"changed file: {deb.name}")


def test_make_manifest_of_nothing_is_an_error(tmp_path):
    with pytest.raises(FileNotFoundError):
        make_manifest(tmp_path / "absent")


@pytest.mark.skipif(not hasattr(__import__("os"), "symlink"), reason="no symlinks")
def test_planted_links_are_extra_files(release, key, tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    (release[0] / "lib" / "linked-dir").symlink_to(outside, target_is_directory=True)
    (release[0] / "dangling").symlink_to(tmp_path / "nowhere")
    report = check(release, key)
    assert not report.ok
    assert report.problems == ("extra file not in the manifest: dangling",
                               "extra file not in the manifest: lib/linked-dir")
    (release[0] / "dangling").unlink()
    with pytest.raises(ValueError, match="link to a directory"):
        make_manifest(release[0])


def test_a_signature_spelled_differently_is_refused(release, key):
    # "...Q==" and "...R==" decode to the same 64 bytes (4 unused bits before the padding):
    # a changed byte in the signature file must still fail.
    doc = json.loads(release[2].read_bytes())
    sig = doc["signature"]
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
    doc["signature"] = sig[:-3] + alphabet[alphabet.index(sig[-3]) ^ 1] + "=="
    release[2].write_text(json.dumps(doc))
    report = check(release, key)
    assert not report.ok and "malformed" in report.message

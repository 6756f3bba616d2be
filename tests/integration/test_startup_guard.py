"""Start-up finishes an interrupted wipe and clears kiosk leftovers before sign-in."""

from app.config import Paths, Policy
from app.core.wipe import WipeMarker
from app.security.erase import write_durably
from app.security.keystore import KeyringKeyStore
from app.security.testing import InMemoryTestKeyring
from app.security.wiper import marker_path
from app.services.startup import prepare_device


def keystores():
    ring = InMemoryTestKeyring()
    return ring, lambda user, dev: KeyringKeyStore.open(user, dev, backend=ring,
                                                        allow_test_backend=True)


def test_interrupted_wipe_is_completed_first(tmp_path):
    paths = Paths.under(tmp_path)
    _, keystore_for = keystores()
    store = keystore_for("dr.x", "AAAAAAAAAAAAAAAAAAAAAA")
    store.cache_key()
    (paths.data / "cache").mkdir(parents=True)
    (paths.data / "cache" / "cache.db").write_bytes(b"\x01" * 4096)
    write_durably(marker_path(paths),
                  WipeMarker("remote", 1, (("dr.x", "AAAAAAAAAAAAAAAAAAAAAA"),)).to_bytes())

    report = prepare_device(Policy(), paths, keystore_for)
    assert report.resumed_wipe is not None and report.resumed_wipe.complete
    assert "interrupted" in report.notice
    assert not store.has_cache_key()
    assert [p for p in paths.data.rglob("*") if p.is_file()] == []
    assert not marker_path(paths).exists()


def test_kiosk_leftovers_are_removed_and_a_workstation_keeps_its_data(tmp_path):
    _, keystore_for = keystores()
    for kiosk in (True, False):
        paths = Paths.under(tmp_path / str(kiosk))
        (paths.data / "devices").mkdir(parents=True)
        (paths.data / "devices" / "x.json").write_text("{}")
        report = prepare_device(Policy(kiosk=kiosk), paths, keystore_for)
        assert report.resumed_wipe is None and report.notice == ""
        left = [p for p in paths.data.rglob("*") if p.is_file()]
        assert (left == []) is kiosk
        assert report.kiosk_files_removed == (1 if kiosk else 0)

"""Offline grace with injected clocks: lock after the grace, wipe after the second limit,
contact resets, a restart keeps the clock (stored in a real cache), a clock set back does
not buy time. The wipe here is the real Wiper: the files are gone afterwards."""

import pytest

from app.config import Paths, Policy
from app.core.wipe import OfflineAction
from app.security.keystore import MemoryKeyStore
from app.security.wiper import Wiper
from app.services.offline_guard import LAST_CONTACT, OfflineGuard
from app.storage.cache import Cache, cache_dir
from app.storage.secrets import SecretRepository

HOUR = 3600.0
POLICY = Policy(offline_grace_s=8 * 3600, offline_wipe_s=72 * 3600)


class Clocks:
    """A wall clock that can be set back, and a monotonic one that only moves forward."""

    def __init__(self, wall: float = 1_800_000_000.0) -> None:
        self.wall, self.mono = wall, 1000.0

    def advance(self, seconds: float) -> None:
        self.wall += seconds
        self.mono += seconds

    def set_wall(self, wall: float) -> None:
        self.wall = wall


class Calls:
    def __init__(self) -> None:
        self.lock = self.wipe = 0

    def on_lock(self) -> None:
        self.lock += 1

    def on_wipe(self) -> None:
        self.wipe += 1


def guard(clocks, calls, **kwargs):
    return OfflineGuard.from_policy(POLICY, lock=calls.on_lock, wipe=calls.on_wipe,
                                    clock=lambda: clocks.wall, monotonic=lambda: clocks.mono,
                                    **kwargs)


def test_lock_after_grace_then_wipe_after_the_limit_each_once():
    clocks, calls = Clocks(), Calls()
    g = guard(clocks, calls)
    g.note_contact()
    clocks.advance(8 * HOUR - 1)
    assert g.check() is OfflineAction.OK and calls.lock == 0
    clocks.advance(1)
    assert g.check() is OfflineAction.LOCK and calls.lock == 1
    clocks.advance(HOUR)
    assert g.check() is OfflineAction.LOCK and calls.lock == 1  # not again
    clocks.advance(63 * HOUR - 1)
    assert g.check() is OfflineAction.LOCK
    clocks.advance(1)
    assert g.check() is OfflineAction.WIPE and (calls.lock, calls.wipe) == (1, 1)
    assert g.check() is OfflineAction.WIPE and calls.wipe == 1


def test_contact_resets_the_clock_and_a_later_grace_locks_again():
    clocks, calls = Clocks(), Calls()
    g = guard(clocks, calls)
    g.note_contact()
    clocks.advance(9 * HOUR)
    assert g.check() is OfflineAction.LOCK
    g.note_contact()
    assert g.check() is OfflineAction.OK and g.state is OfflineAction.OK
    clocks.advance(71 * HOUR)  # 71 h from the new contact: would be a wipe from the old one
    assert g.check() is OfflineAction.LOCK and (calls.lock, calls.wipe) == (2, 0)


def test_a_clock_set_back_locks_at_once_and_still_wipes_by_the_monotonic_clock():
    clocks, calls = Clocks(), Calls()
    g = guard(clocks, calls)
    g.note_contact()
    clocks.advance(HOUR)
    clocks.set_wall(clocks.wall - 30 * 24 * HOUR)  # a month back, to dodge the wipe
    assert g.check() is OfflineAction.LOCK and calls.lock == 1
    clocks.advance(71 * HOUR)  # 72 h since the contact by the clock that cannot go back
    assert g.check() is OfflineAction.WIPE and calls.wipe == 1


def test_a_small_backwards_step_is_tolerated():
    clocks, calls = Clocks(), Calls()
    g = guard(clocks, calls)
    g.note_contact()
    clocks.set_wall(clocks.wall - 120)  # NTP correction
    assert g.check() is OfflineAction.OK


@pytest.fixture
def cache(tmp_path):
    keys = MemoryKeyStore("dr.offline", "DEV1")
    cache = Cache.open(tmp_path / "cache", keys)
    yield cache
    cache.close()


def test_a_restart_keeps_the_clock(cache):
    clocks, calls = Clocks(), Calls()
    first = guard(clocks, calls)
    first.attach(SecretRepository(cache))
    first.note_contact()
    clocks.advance(5 * HOUR)
    first.detach()
    # The process ends; a new one starts (its monotonic clock starts again) 5 h later.
    clocks.advance(5 * HOUR)
    clocks.mono = 0.0
    second = guard(clocks, calls)
    assert second.check() is OfflineAction.OK  # knows nothing yet: starts counting now
    second.attach(SecretRepository(cache))
    assert second.check() is OfflineAction.LOCK and calls.lock == 1
    assert second.offline_s() == pytest.approx(10 * HOUR)
    # The 10 h already offline count on the monotonic clock too: 62 more hours wipe.
    clocks.advance(62 * HOUR)
    assert second.check() is OfflineAction.WIPE


def test_restart_with_the_clock_set_back_locks(cache):
    clocks, calls = Clocks(), Calls()
    first = guard(clocks, calls)
    first.attach(SecretRepository(cache))
    first.note_contact()
    first.detach()
    clocks.set_wall(clocks.wall - 10 * 24 * HOUR)
    second = guard(clocks, calls)
    second.attach(SecretRepository(cache))
    assert second.check() is OfflineAction.LOCK
    clocks.advance(72 * HOUR)
    assert second.check() is OfflineAction.WIPE


def test_contacts_are_written_at_most_once_a_minute(cache):
    clocks, calls = Clocks(), Calls()
    repo = SecretRepository(cache)
    g = guard(clocks, calls)
    g.attach(repo)
    g.note_contact()
    written = repo.get(LAST_CONTACT)
    assert written == str(int(clocks.wall * 1000)).encode()
    clocks.advance(30)
    g.note_contact()
    assert repo.get(LAST_CONTACT) == written  # within the minute: memory only
    assert g.check() is OfflineAction.OK
    clocks.advance(31)
    g.note_contact()
    assert repo.get(LAST_CONTACT) == str(int(clocks.wall * 1000)).encode()
    written = repo.get(LAST_CONTACT)
    clocks.advance(10)
    g.note_contact()
    g.detach()  # closing adds no write: the stored value is at most a minute old
    assert repo.get(LAST_CONTACT) == written


def test_wipe_at_the_limit_removes_the_files(tmp_path):
    """The guard's wipe callable is the real Wiper: keys gone, files gone."""
    paths = Paths.under(tmp_path / "ws")
    stores: dict[tuple[str, str], MemoryKeyStore] = {}

    def keystore_for(user, device):
        return stores.setdefault((user, device), MemoryKeyStore(user, device))

    directory = cache_dir(paths.data, "dr.lost", "DEV9")
    cache = Cache.open(directory, keystore_for("dr.lost", "DEV9"))
    clocks, reports = Clocks(), []

    def wipe():
        cache.close()
        reports.append(Wiper(paths, keystore_for).wipe("offline", [("dr.lost", "DEV9")]))

    g = OfflineGuard.from_policy(POLICY, lock=lambda: None, wipe=wipe,
                                 clock=lambda: clocks.wall, monotonic=lambda: clocks.mono)
    g.attach(SecretRepository(cache))
    g.note_contact()
    assert any(p.is_file() for p in paths.data.rglob("*"))
    clocks.advance(72 * HOUR)
    assert g.check() is OfflineAction.WIPE
    assert reports and reports[0].complete
    assert [p for p in paths.data.rglob("*") if p.is_file()] == []
    assert not stores[("dr.lost", "DEV9")].has_cache_key()  # crypto-erased first


def test_policy_limits_are_checked():
    with pytest.raises(ValueError):
        OfflineGuard(grace_s=10, wipe_after_s=5, lock=lambda: None, wipe=lambda: None)

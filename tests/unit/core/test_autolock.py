import pytest

from app.core.autolock import AutoLock, LockConfig, LockReason, LockState


class FakeClock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now

    def advance(self, s):
        self.now += s


@pytest.fixture
def clock():
    return FakeClock()


@pytest.fixture
def events():
    return []


@pytest.fixture
def lock(clock, events):
    return AutoLock(LockConfig(300, 30, 3), clock, [events.append])


def states(events):
    return [(e.old.value, e.new.value, e.reason.value) for e in events]


def test_idle_goes_warning_then_locked(lock, clock, events):
    assert lock.next_deadline() == 1270
    clock.advance(269.9)
    assert lock.tick() is LockState.ACTIVE
    clock.advance(0.1)
    assert lock.tick() is LockState.WARNING
    assert lock.seconds_until_lock() == pytest.approx(30)
    assert lock.next_deadline() == 1300
    clock.advance(30)
    assert lock.tick() is LockState.LOCKED
    assert lock.next_deadline() is None and lock.seconds_until_lock() is None
    assert states(events) == [("active", "warning", "idle"), ("warning", "locked", "idle")]
    assert events[-1].at == 1300


def test_input_resets_in_active_and_warning(lock, clock, events):
    clock.advance(200)
    lock.user_input()
    assert lock.next_deadline() == 1470
    clock.advance(280)
    lock.tick()
    assert lock.state is LockState.WARNING
    lock.user_input()
    assert lock.state is LockState.ACTIVE
    assert states(events)[-1] == ("warning", "active", "input")
    clock.advance(299)
    assert lock.tick() is LockState.WARNING


def test_input_after_sleeping_past_the_deadline_locks(lock, clock, events):
    clock.advance(10_000)  # no tick in between: the machine was asleep
    lock.user_input()
    assert lock.state is LockState.LOCKED
    assert states(events) == [("active", "locked", "idle")]


def test_input_while_locked_does_nothing(lock, clock):
    lock.lock_now()
    clock.advance(1)
    lock.user_input()
    assert lock.state is LockState.LOCKED


@pytest.mark.parametrize(
    ("event", "reason"),
    [("os_session_locked", "os_lock"), ("suspended", "suspend"), ("lock_now", "manual")],
)
@pytest.mark.parametrize("from_warning", [False, True])
def test_os_lock_and_suspend_lock_at_once(lock, clock, events, event, reason, from_warning):
    if from_warning:
        clock.advance(280)
        lock.tick()
    getattr(lock, event)()
    assert lock.state is LockState.LOCKED
    assert events[-1].reason.value == reason


def test_unlock_success_resets_failures_and_timer(lock, clock, events):
    lock.lock_now()
    lock.unlock_failed()
    lock.unlock_failed()
    assert lock.unlock_failures == 2
    clock.advance(50)
    lock.unlock_succeeded()
    assert lock.state is LockState.ACTIVE and lock.unlock_failures == 0
    assert lock.next_deadline() == 1050 + 270
    assert events[-1].reason is LockReason.UNLOCKED


def test_max_failures_end_the_session(lock, events):
    lock.lock_now()
    for _ in range(3):
        lock.unlock_failed()
    assert lock.state is LockState.SESSION_ENDED
    assert events[-1].reason is LockReason.UNLOCK_FAILURES
    lock.unlock_succeeded()  # terminal: no way back
    lock.user_input()
    lock.unlock_failed()
    assert lock.state is LockState.SESSION_ENDED
    assert len(events) == 2


def test_unlock_calls_outside_locked_are_ignored(lock, events):
    lock.unlock_failed()
    lock.unlock_succeeded()
    assert lock.state is LockState.ACTIVE and lock.unlock_failures == 0 and events == []


def test_end_session_from_any_state(lock, events):
    lock.end_session()
    lock.end_session()
    assert lock.state is LockState.SESSION_ENDED
    assert states(events) == [("active", "session_ended", "logout")]


def test_zero_warning_goes_straight_to_locked(clock):
    lock = AutoLock(LockConfig(60, 0, 1), clock)
    seen = []
    lock.subscribe(seen.append)
    clock.advance(60)
    lock.tick()
    assert [e.new for e in seen] == [LockState.LOCKED]


@pytest.mark.parametrize(("timeout", "warning", "failures"), [(0, 0, 1), (30, 30, 1), (30, 5, 0)])
def test_bad_config_refused(timeout, warning, failures):
    with pytest.raises(ValueError):
        LockConfig(timeout, warning, failures)


def test_stale_unlock_does_not_lift_a_lock_that_just_fell_due(lock, clock, events):
    clock.advance(301)  # no tick: the lock screen was never shown
    lock.unlock_succeeded()
    assert lock.state is LockState.LOCKED
    lock.unlock_succeeded()  # now the lock was in force: lifted
    assert lock.state is LockState.ACTIVE
    clock.advance(301)
    lock.unlock_failed()  # likewise not counted against a lock the user has not seen
    assert lock.state is LockState.LOCKED and lock.unlock_failures == 0

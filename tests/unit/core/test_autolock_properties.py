import itertools

from hypothesis import given, settings
from hypothesis import strategies as st

from app.core.autolock import AutoLock, LockConfig, LockState

EVENTS = st.one_of(
    st.tuples(st.just("advance"), st.floats(min_value=0, max_value=400)),
    st.tuples(
        st.sampled_from([
            "tick", "user_input", "os_session_locked", "suspended", "lock_now",
            "unlock_succeeded", "unlock_failed",
        ]),
        st.none(),
    ),
)


class Clock:
    now = 0.0

    def __call__(self):
        return self.now


@settings(max_examples=300, deadline=None)
@given(events=st.lists(EVENTS, max_size=60))
def test_invariants_hold_for_any_event_sequence(events):
    clock = Clock()
    seen = []
    lock = AutoLock(LockConfig(300, 30, 3), clock, [seen.append])
    last_input = 0.0
    for name, arg in events:
        before = lock.state
        if name == "advance":
            clock.now += arg
            continue
        getattr(lock, name)()
        if name == "user_input" and lock.state in (LockState.ACTIVE, LockState.WARNING):
            last_input = clock.now
        if name == "unlock_succeeded" and before is LockState.LOCKED:
            last_input = clock.now
        # Never unlocked by anything but a successful unlock.
        if before is LockState.LOCKED and lock.state is not LockState.LOCKED:
            assert name in ("unlock_succeeded", "unlock_failed")
        # The end is the end.
        if before is LockState.SESSION_ENDED:
            assert lock.state is LockState.SESSION_ENDED
        # After any call the clock has been caught up with: idle past the timeout is locked.
        if lock.state in (LockState.ACTIVE, LockState.WARNING):
            assert clock.now - last_input < 300
        if lock.state is LockState.ACTIVE:
            assert clock.now - last_input < 270
    # Listeners saw every change, in order, each starting where the previous ended.
    for earlier, later in itertools.pairwise(seen):
        assert earlier.new is later.old
    if seen:
        assert seen[-1].new is lock.state
    assert lock.unlock_failures < 3 or lock.state is LockState.SESSION_ENDED

"""Speed and time left over a sliding window (a fake clock: no timing in unit tests)."""

from app.services.transfers.progress import RateMeter, TransferProgress


def test_speed_and_eta_follow_the_recent_window():
    now = [0.0]
    meter = RateMeter(window_s=3.0, clock=lambda: now[0])
    meter.reset(0)
    assert meter.speed() == 0.0 and meter.eta(100) is None
    for second in range(1, 11):
        now[0] = float(second)
        meter.add(second * 1000)  # 1000 B/s
    assert meter.speed() == 1000.0
    assert meter.eta(5000) == 5.0
    for second in range(11, 16):
        now[0] = float(second)
        meter.add(10_000 + (second - 10) * 4000)  # speeds up to 4000 B/s
    assert meter.speed() == 4000.0  # the old, slower samples have left the window
    assert meter.eta(0) == 0.0


def test_snapshot_fraction_and_final():
    p = TransferProgress("t", "upload", "uploading", "r", 25, 100, 1, 4)
    assert p.fraction == 0.25 and not p.final
    assert TransferProgress("t", "upload", "done", "r", 0, 0, 1, 1).fraction == 1.0

"""The pre-join network test against the real server and a real coturn: server reachable,
TURN allocation with the server's time-limited credentials, round trip and loss; and the
verdicts when TURN cannot be reached, refuses the credentials, or the server is gone."""

from __future__ import annotations

import contextlib

import pytest

from app.rtc.nettest import RelayProbe
from app.services.calls import network_verdict
from tests.integration.test_calls import TURN_SECRET, coturn, new_peer, turn_server  # noqa: F401
from tests.support.server import start_server


async def test_good_with_a_reachable_coturn_and_turn_only_when_policy_says_relay(
        turn_server, tmp_path):  # noqa: F811
    alice = await new_peer(turn_server, tmp_path, "dr.alice")
    try:
        report = await alice.calls.network_test()
        assert report.verdict == "good" and report.server_ok and report.reason == ""
        assert report.relay is not None and report.relay.allocated
        assert report.relay.allocation_ms is not None and report.relay.allocation_ms > 0
        assert report.rtt_ms is not None and 0 < report.rtt_ms < 500
        assert report.loss is not None and report.loss <= 0.2  # loopback, a busy machine
        assert report.server_ms is not None and report.server_ms > 0
        alice.calls.relay_only = True
        assert (await alice.calls.network_test()).verdict == "turn_only"
    finally:
        await alice.close()


async def test_turn_unreachable_is_direct_only_or_blocked_when_relay_is_required(
        turn_server, coturn, tmp_path):  # noqa: F811
    alice = await new_peer(turn_server, tmp_path, "dr.alice")
    try:
        coturn.stop()
        report = await alice.calls.network_test(timeout_s=1.5)
        assert (report.verdict, report.reason) == ("direct_only", "relay_unreachable")
        assert report.server_ok and report.relay is not None and not report.relay.allocated
        assert report.loss == 1.0 and report.rtt_ms is None
        alice.calls.relay_only = True
        report = await alice.calls.network_test(timeout_s=1.5)
        assert (report.verdict, report.reason) == ("blocked", "relay_unreachable")
    finally:
        await alice.close()


async def test_coturn_refuses_credentials_it_did_not_issue(coturn, tmp_path):  # noqa: F811
    """A server whose TURN secret is not coturn's hands out credentials coturn refuses: the
    allocation fails (so the test checks real credentials, not just a reachable port)."""
    wrong = start_server(tmp_path / "wrong-secret", require_device_approval=False,
                         login_backoff_base_ms=0, turn_secret=TURN_SECRET + "-not",
                         turn_urls=(f"turn:127.0.0.1:{coturn.port}?transport=udp",))
    try:
        alice = await new_peer(wrong, tmp_path, "dr.alice")
        try:
            report = await alice.calls.network_test()
            assert report.relay is not None and not report.relay.allocated
            assert report.relay.error == "refused"
            assert report.rtt_ms is not None  # coturn itself answers: reachable, refusing
            assert report.verdict == "direct_only"
        finally:
            await alice.close()
    finally:
        wrong.stop()


async def test_no_turn_offered_and_server_gone(open_server, tmp_path):
    alice = await new_peer(open_server, tmp_path, "dr.alice")
    report = await alice.calls.network_test()
    assert (report.verdict, report.reason, report.relay) == ("direct_only", "no_relay", None)
    open_server.stop()
    try:
        report = await alice.calls.network_test()
        assert (report.verdict, report.reason) == ("blocked", "server_unreachable")
        assert not report.server_ok
    finally:
        with contextlib.suppress(Exception):  # signing out cannot reach the server: fine
            await alice.close()


@pytest.mark.parametrize(("server_ok", "relay", "relay_only", "expected"), [
    (False, None, False, ("blocked", "server_unreachable")),
    (True, RelayProbe(True, 5.0, 1.0, 0.0, 10), False, ("good", "")),
    (True, RelayProbe(True, 5.0, 1.0, 0.0, 10), True, ("turn_only", "")),
    (True, RelayProbe(False, error="timeout"), False, ("direct_only", "relay_unreachable")),
    (True, RelayProbe(False, error="timeout"), True, ("blocked", "relay_unreachable")),
    (True, None, True, ("blocked", "no_relay")),
])
def test_verdicts(server_ok, relay, relay_only, expected):
    assert network_verdict(server_ok=server_ok, relay=relay, relay_only=relay_only) == expected

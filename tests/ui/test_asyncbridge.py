"""The async bridge: results, errors told safely, cancellation when the owner goes away."""

from __future__ import annotations

import asyncio
import logging
import threading

import pytest
import shiboken6
from PySide6.QtWidgets import QWidget

from app.core.errors import ConnectionFailed, SafeConsultError
from app.ui.asyncbridge import TaskRunner, run_in_worker, user_message

PATIENT_NAME = "Jane Doe"


@pytest.fixture
def runner(qloop) -> TaskRunner:
    return TaskRunner()


@pytest.fixture
def owner(qtbot) -> QWidget:
    widget = QWidget()
    qtbot.addWidget(widget)
    return widget


async def answer(value: int) -> int:
    await asyncio.sleep(0)
    return value


async def fail(exc: BaseException) -> None:
    await asyncio.sleep(0)
    raise exc


def test_result_reaches_on_result(qtbot, runner, owner):
    got: list[int] = []
    runner.run_task(answer(42), owner=owner, on_result=got.append)
    qtbot.waitUntil(lambda: got == [42], timeout=2000)
    assert runner.pending == 0


def test_our_error_shows_its_user_message(qtbot, runner, owner):
    with qtbot.waitSignal(runner.errorReported, timeout=2000) as blocker:
        runner.run_task(fail(ConnectionFailed("dns lookup failed for host")), owner=owner)
    assert blocker.args == [ConnectionFailed.user_message]


def test_custom_user_message_is_used(qtbot, runner, owner):
    errors: list[str] = []
    runner.run_task(fail(SafeConsultError("x", user_message="Wrong code.")), owner=owner,
                    on_error=errors.append)
    qtbot.waitUntil(lambda: errors == ["Wrong code."], timeout=2000)


def test_unknown_error_text_never_reaches_the_user(qtbot, runner, owner, caplog):
    caplog.set_level(logging.ERROR, logger="app.ui.asyncbridge")
    with qtbot.waitSignal(runner.errorReported, timeout=2000) as blocker:
        runner.run_task(fail(KeyError(PATIENT_NAME)), owner=owner)
    (message,) = blocker.args
    assert PATIENT_NAME not in message
    assert message == user_message(KeyError())
    assert "log" in message  # tells the user where the details went
    # ... and the details did go to the log, as a crash with its type.
    (record,) = [r for r in caplog.records if r.getMessage() == "task crashed"]
    assert record.exc_info is not None and record.exc_info[0] is KeyError


def test_on_error_replaces_the_notification(qtbot, runner, owner):
    errors: list[str] = []
    reported: list[str] = []
    runner.errorReported.connect(reported.append)
    runner.run_task(fail(ConnectionFailed()), owner=owner, on_error=errors.append)
    qtbot.waitUntil(lambda: bool(errors), timeout=2000)
    assert reported == []


def test_destroying_the_owner_cancels_the_task(qtbot, runner):
    owner = QWidget()
    started = asyncio.Event()
    finished: list[str] = []

    async def long_job() -> str:
        started.set()
        await asyncio.sleep(30)
        finished.append("ran to the end")
        return "done"

    results: list[str] = []
    task = runner.run_task(long_job(), owner=owner, on_result=results.append,
                           on_error=results.append)
    qtbot.waitUntil(started.is_set, timeout=2000)
    owner.deleteLater()
    qtbot.waitUntil(task.cancelled, timeout=2000)
    qtbot.wait(20)
    assert results == [] and finished == []
    assert runner.pending == 0


def test_owner_deleted_before_the_task_starts(qtbot, runner):
    """C++ deletion (not deleteLater) emits destroyed at once: the task never runs."""
    owner = QWidget()
    ran: list[int] = []

    async def job() -> int:
        ran.append(1)
        return 1

    task = runner.run_task(job(), owner=owner, on_result=ran.append)
    shiboken6.delete(owner)
    qtbot.waitUntil(task.done, timeout=2000)
    assert task.cancelled()
    assert ran == []


def test_run_in_worker_uses_another_thread(qtbot, runner, owner):
    gui_thread = threading.get_ident()

    def heavy(n: int) -> tuple[int, int]:
        return sum(range(n)), threading.get_ident()

    async def job() -> tuple[int, int]:
        return await run_in_worker(heavy, 1000)

    got: list[tuple[int, int]] = []
    runner.run_task(job(), owner=owner, on_result=got.append)
    qtbot.waitUntil(lambda: bool(got), timeout=5000)
    total, thread = got[0]
    assert total == sum(range(1000))
    assert thread != gui_thread


def test_cancel_all(qtbot, runner, owner):
    task = runner.run_task(asyncio.sleep(30), owner=owner)
    runner.cancel_all()
    qtbot.waitUntil(task.cancelled, timeout=2000)


def test_run_task_needs_the_running_loop(qtbot):
    """Never a silent default loop that nobody runs (the coroutine would just vanish)."""
    owner = QWidget()
    qtbot.addWidget(owner)
    coro = answer(1)
    with pytest.raises(RuntimeError):
        TaskRunner().run_task(coro, owner=owner)
    coro.close()


def test_loop_running_is_false_between_the_tests_loops(qapp):
    # What a leftover widget's timer sees after its test's loop was unmarked: it must wait
    # for its next tick instead of starting a task nobody would run.
    from app.ui.asyncbridge import loop_running

    assert not loop_running()


def test_loop_running_is_true_while_the_loop_runs(qloop):
    from app.ui.asyncbridge import loop_running

    assert loop_running()

"""The one way widgets run async work.

One asyncio loop runs on the Qt event loop (qasync): no second thread polling, no timers
spinning. A widget starts a coroutine with :meth:`TaskRunner.run_task`; the runner keeps a
reference (asyncio keeps only weak ones), cancels the task when the owning widget is destroyed
(so a callback never touches a deleted widget), and turns failures into a message the user may
see: ``SafeConsultError.user_message`` for our own errors, a generic sentence for anything else
(whose text may hold PHI or internals) with the details sent to the PHI-filtered log.

CPU-heavy work goes to a worker thread with :func:`run_in_worker`, awaited from a coroutine.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, TypeVar

from PySide6.QtCore import QCoreApplication, QObject, Signal

from app.core.errors import SafeConsultError

# asyncio and qasync are imported where first used, not here: the sign-in window is built and
# painted before the event loop starts (app/main.py); those imports cost ~40 ms of CPU.
if TYPE_CHECKING:
    import asyncio

    from PySide6.QtWidgets import QApplication

log = logging.getLogger(__name__)

T = TypeVar("T")

_ERROR_CONTEXT = "SafeConsultError"


def install_event_loop(app: QApplication) -> asyncio.AbstractEventLoop:
    """Make a qasync loop the asyncio loop of this thread. Run it with ``loop.run_forever()``
    or ``loop.run_until_complete(...)`` (both run ``app.exec()``)."""
    import asyncio

    import qasync

    loop = qasync.QEventLoop(app)
    asyncio.set_event_loop(loop)
    return loop


def user_message(exc: BaseException) -> str:
    """The text a user may see for ``exc``, in the current UI language.

    Our own errors carry a PHI-free ``user_message`` (English in the source; translated here
    when the catalogue knows it). Anything else gets a generic sentence: its ``str`` could
    quote patient data or internals.
    """
    if isinstance(exc, SafeConsultError):
        return QCoreApplication.translate(_ERROR_CONTEXT, exc.user_message)
    return QCoreApplication.translate(
        "TaskRunner",
        "Something went wrong. The details were written to the log; if it happens again, "
        "contact IT.",
    )


async def run_in_worker(fn: Callable[..., T], *args: Any) -> T:
    """Run blocking or CPU-heavy ``fn(*args)`` in a worker thread and await its result.

    ``fn`` must not touch widgets (Qt widgets live in the GUI thread only).
    """
    import asyncio

    return await asyncio.to_thread(fn, *args)


def loop_running() -> bool:
    """Whether the event loop runs now. Timer-driven refreshes check it: Qt can deliver a
    timer tick while no loop runs (between a test's event loops, during shutdown), and a
    periodic refresh then simply waits for its next tick."""
    import asyncio

    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


class TaskRunner(QObject):
    """Starts coroutines for widgets and reports their errors.

    One instance per window, built by the composition root and passed to the views.
    ``errorReported`` carries a user-safe message for the notification area.
    """

    errorReported = Signal(str)

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._tasks: set[asyncio.Future[Any]] = set()

    @property
    def pending(self) -> int:
        return len(self._tasks)

    def run_task(
        self,
        coro: Awaitable[T],
        *,
        owner: QObject,
        on_result: Callable[[T], None] | None = None,
        on_error: Callable[[str], None] | None = None,
    ) -> asyncio.Future[T]:
        """Schedule ``coro`` on the loop on behalf of ``owner``.

        ``on_result`` gets the return value; ``on_error`` gets the user-safe message (when it is
        not given, the message goes to ``errorReported``). Neither is called after ``owner``
        is destroyed or the task is cancelled. Raises RuntimeError if the loop is not running.
        """
        import asyncio

        # The running qasync loop, never a fresh default loop that nobody would run.
        task: asyncio.Future[T] = asyncio.ensure_future(coro, loop=asyncio.get_running_loop())
        alive = [True]

        def owner_destroyed(*_: object) -> None:
            alive[0] = False
            task.cancel()

        owner.destroyed.connect(owner_destroyed)

        def done(finished: asyncio.Future[T]) -> None:
            self._tasks.discard(finished)
            if alive[0]:
                # The owner lives on: drop the connection so it does not pin this closure.
                with contextlib.suppress(RuntimeError, TypeError):
                    owner.destroyed.disconnect(owner_destroyed)
            if finished.cancelled() or not alive[0]:
                return
            exc = finished.exception()
            if exc is None:
                if on_result is not None:
                    on_result(finished.result())
                return
            self._report(exc, on_error)

        self._tasks.add(task)
        task.add_done_callback(done)
        return task

    def cancel_all(self) -> None:
        for task in list(self._tasks):
            task.cancel()

    def _report(self, exc: BaseException, on_error: Callable[[str], None] | None) -> None:
        if isinstance(exc, SafeConsultError):
            # Our errors are expected outcomes (wrong password, server down): a short line.
            log.info("task failed",
                     extra={"event": "task_failed", "reason_code": type(exc).__name__})
        else:
            log.error(
                "task crashed", extra={"event": "task_crashed", "reason_code": type(exc).__name__},
                exc_info=(type(exc), exc, exc.__traceback__),
            )
        message = user_message(exc)
        if on_error is not None:
            on_error(message)
        else:
            self.errorReported.emit(message)

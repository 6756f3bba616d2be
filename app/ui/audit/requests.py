"""What every Admin page shares for its server requests: they are counted (``busy``: tests,
and the buttons a page disables while it waits) and a failure shows in the page's error line.

A mixin for the page widgets, which provide ``_runner`` (the TaskRunner) and ``error`` (their
error label); a page with more to do on a failure overrides :meth:`_request_failed`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from app.ui.form_error import show_form_error


class PageRequests:
    _inflight = 0

    @property
    def busy(self) -> int:
        """Requests of this page still under way."""
        return self._inflight

    def _request_failed(self, message: str) -> None:
        show_form_error(self.error, message)  # type: ignore[attr-defined]

    def _run(self, coro: Awaitable[Any], done: Callable[[Any], None],
             on_error: Callable[[str], None] | None = None) -> None:
        show_form_error(self.error, "")  # type: ignore[attr-defined]
        self._inflight += 1

        def result(value: Any) -> None:
            self._inflight -= 1
            done(value)

        def error(message: str) -> None:
            self._inflight -= 1
            (on_error or self._request_failed)(message)

        self._runner.run_task(coro, owner=self, on_result=result,  # type: ignore[attr-defined]
                              on_error=error)

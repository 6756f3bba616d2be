"""Chat GUI tests run real chat services (own device identity, cache and keyring each)
through the real relay, on the test session's qasync loop."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import TypeVar

import pytest

from app.services.verification import VerificationService
from app.ui.asyncbridge import TaskRunner
from app.ui.views.chat import ChatView
from tests.integration.test_chat import Client, new_client

T = TypeVar("T")


def run(qtbot, coro: Awaitable[T], timeout: int = 30_000) -> T:
    """Await ``coro`` on the qasync loop while Qt keeps processing events."""
    future = asyncio.ensure_future(coro)
    qtbot.waitUntil(future.done, timeout=timeout)
    return future.result()


class Person:
    """One clinician at their workstation: a real ChatService and the chat view over it."""

    def __init__(self, qtbot, client: Client) -> None:
        self.client = client
        self.chat = client.chat
        self.verification = VerificationService(client.chat, audit=client.ws.session.audit)
        self.view = ChatView()
        qtbot.addWidget(self.view)
        self.view.resize(1280, 760)
        self.view.configure(runner=TaskRunner(self.view), chat=self.chat,
                            verification=self.verification)
        self.view.show()

    @property
    def user_id(self) -> str:
        return self.client.user_id

    @property
    def device_id(self) -> str:
        return self.client.ws.session.device.device_id


@pytest.fixture
def people(qtbot, qloop, theme, open_server, tmp_path):
    """``people("dr.a", "dr.b", background=True)`` -> signed-in Persons; closed at the end."""
    made: list[Person] = []

    def make(*names: str, **options) -> list[Person]:
        for name in names:
            client = run(qtbot, new_client(open_server, tmp_path, name, **options))
            made.append(Person(qtbot, client))
        return made[-len(names):]

    yield make
    for person in made:
        person.verification.close()
        run(qtbot, person.client.close())

"""Widgets observing Qt-free evented state (psygnal) without outliving their connections."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import QObject

if TYPE_CHECKING:
    from psygnal import SignalInstance


def observe(signal: SignalInstance, slot: Callable[..., Any], owner: QObject) -> None:
    """Connect ``slot`` to ``signal`` for as long as ``owner`` lives.

    psygnal holds bound methods weakly, but the Python wrapper of a widget can outlive its C++
    object; a late emission would then call into a deleted widget. Disconnecting on
    ``destroyed`` closes that window.
    """
    signal.connect(slot)
    owner.destroyed.connect(lambda *_: signal.disconnect(slot, missing_ok=True))

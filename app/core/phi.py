"""The one tag for patient data (PHI) in values.

A value wrapped in :class:`Phi` never shows itself by accident: ``str``, ``repr`` and
``format`` give a placeholder, so it cannot leak into a log line, an exception message or a
traceback. Code that really needs the value calls :meth:`Phi.reveal` -- a grep-able act.
Widgets that show PHI are tagged by the UI layer (``app.ui.phi``), which reveals at display time.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Generic, TypeVar

T = TypeVar("T")

PLACEHOLDER = "[PHI]"


@dataclass(frozen=True, slots=True)
class Phi(Generic[T]):
    _value: T

    def reveal(self) -> T:
        return self._value

    def __str__(self) -> str:
        return PLACEHOLDER

    def __repr__(self) -> str:
        return f"Phi({PLACEHOLDER})"

    def __format__(self, spec: str) -> str:
        return PLACEHOLDER


def reveal(value: object) -> object:
    """The plain value of ``value`` whether or not it is wrapped."""
    return value.reveal() if isinstance(value, Phi) else value

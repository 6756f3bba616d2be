"""Guard against a reference-counting bug in the installed Qt bindings.

PySide6 6.12.0 on CPython 3.11 returns ``None`` from every void C++ method (``hide()``,
``show()``, ``setText()``, ``processEvents()``...) without taking a new reference to it: each
call lowers ``None``'s reference count by one. CPython 3.12+ made ``None`` immortal (PEP 683),
so there it is harmless; on 3.11 the count reaches zero after some ten thousand such calls and
the interpreter aborts ("Fatal Python error: none_dealloc"). A GUI session makes that many
calls within minutes; the lock benchmark hit it after ~15 rounds.

:func:`protect_none` measures the leak (a few hundred calls of a void method) and, only if it
is there, raises ``None``'s count far out of reach -- what 3.12's immortality does. It is a
stop-gap: the real fixes are CPython >= 3.12 or a PySide6 release without the leak; the
composition root and the GUI test fixtures call it before anything else touches Qt.
"""

from __future__ import annotations

import sys

_PROBE_CALLS = 200
_BALLAST = 1 << 40


def none_leak_per_call() -> float:
    """References to ``None`` lost per void Qt call (0.0 when the bindings are sound)."""
    from PySide6.QtCore import QObject

    probe = QObject()
    before = sys.getrefcount(None)
    for _ in range(_PROBE_CALLS):
        probe.setObjectName("probe")  # void in C++
    return max(0.0, (before - sys.getrefcount(None)) / _PROBE_CALLS)


def protect_none() -> bool:
    """Make ``None`` effectively immortal if the bindings leak its references. Idempotent;
    returns True when the guard is (now) in force."""
    if sys.version_info >= (3, 12):
        return False  # immortal already
    if sys.getrefcount(None) > _BALLAST // 2:
        return True
    if none_leak_per_call() == 0.0:
        return False
    import ctypes  # only where the leak is (start-up time)

    # ob_refcnt is the first field of every object in a release build of CPython 3.11.
    ctypes.c_ssize_t.from_address(id(None)).value += _BALLAST
    return True

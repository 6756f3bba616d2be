"""The user messages of ``app.core.errors``, listed for the translation tools.

``SafeConsultError.user_message`` is English in the (Qt-free) core; the UI translates it when
showing it (``asyncbridge.user_message``). lupdate only finds strings in UI code, so every such
message is listed here under the "SafeConsultError" context. tests/ui/test_i18n.py fails when
an error class's message is missing from this list.
"""

from __future__ import annotations

from PySide6.QtCore import QT_TRANSLATE_NOOP

USER_MESSAGES = (
    QT_TRANSLATE_NOOP("SafeConsultError", "Something went wrong."),
    QT_TRANSLATE_NOOP(
        "SafeConsultError",
        "The machine policy could not be read; safe defaults are in force."),
    QT_TRANSLATE_NOOP(
        "SafeConsultError",
        "The SafeConsult server cannot be reached. Check the network and try again."),
    QT_TRANSLATE_NOOP(
        "SafeConsultError",
        "The server's certificate is not the one this workstation trusts. "
        "Do not continue; contact IT."),
    QT_TRANSLATE_NOOP("SafeConsultError", "The server refused the request."),
    # The sign-in hook in app/main.py until the session service is wired in.
    QT_TRANSLATE_NOOP("SafeConsultError", "Sign-in is not available in this build yet."),
)

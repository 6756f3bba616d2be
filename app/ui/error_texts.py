"""User messages of errors that reach the shell, listed for the translation tools.

``SafeConsultError.user_message`` is English in the Qt-free layers; the UI translates it when
showing it (``asyncbridge.user_message``). lupdate only finds strings in UI code, so each such
message is listed here under the "SafeConsultError" context. tests/ui/test_i18n.py fails when a
message on the sign-in path (core, network, keys, cache, session refusals, demo) is missing.
A message not listed is shown in English: readable, never hidden.
"""

from __future__ import annotations

from PySide6.QtCore import QT_TRANSLATE_NOOP

USER_MESSAGES = (
    # app.core.errors
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
    # app.net.auth_api
    QT_TRANSLATE_NOOP(
        "SafeConsultError",
        "The server sent an answer this version of SafeConsult does not understand."),
    # app.security
    QT_TRANSLATE_NOOP(
        "SafeConsultError",
        "This workstation's secure key storage could not be used. Contact IT."),
    QT_TRANSLATE_NOOP(
        "SafeConsultError",
        "No secure key storage exists on this machine (no OS keyring is available), so "
        "SafeConsult cannot keep patient data here. Contact IT, or use kiosk mode."),
    QT_TRANSLATE_NOOP(
        "SafeConsultError",
        "This workstation's device identity could not be opened (it may have been copied "
        "from another machine). Sign in again to enroll this workstation."),
    # app.crypto.identity
    QT_TRANSLATE_NOOP(
        "SafeConsultError",
        "This device's identity could not be opened. Contact IT to re-enroll it."),
    # app.storage.errors
    QT_TRANSLATE_NOOP("SafeConsultError", "The local encrypted cache could not be used."),
    QT_TRANSLATE_NOOP(
        "SafeConsultError",
        "The local encrypted cache cannot be read on this device. It will be rebuilt from the "
        "server; nothing on the server is lost."),
    QT_TRANSLATE_NOOP(
        "SafeConsultError",
        "The local encrypted cache is an older copy than this device last used, which can mean "
        "it was tampered with. It will be rebuilt from the server; contact IT if this happens "
        "again."),
    QT_TRANSLATE_NOOP(
        "SafeConsultError",
        "The local cache is busy (is SafeConsult open twice?). Try again."),
    QT_TRANSLATE_NOOP(
        "SafeConsultError",
        "The disk is full, so the latest data could not be saved on this workstation. "
        "Free some space; nothing already saved was lost."),
    # app.services.session.REFUSALS
    QT_TRANSLATE_NOOP(
        "SafeConsultError", "The username, password or authenticator code is not correct."),
    QT_TRANSLATE_NOOP(
        "SafeConsultError",
        "Too many failed attempts: this account is locked for a while. "
        "Try again later or contact IT."),
    QT_TRANSLATE_NOOP("SafeConsultError", "Too many attempts. Wait a moment, then try again."),
    QT_TRANSLATE_NOOP("SafeConsultError", "This account is disabled. Contact IT."),
    QT_TRANSLATE_NOOP(
        "SafeConsultError",
        "This workstation is enrolled and waiting for IT's approval. "
        "Give IT the device fingerprint shown below."),
    QT_TRANSLATE_NOOP(
        "SafeConsultError",
        "IT has revoked this workstation. Its SafeConsult data has been removed."),
    QT_TRANSLATE_NOOP(
        "SafeConsultError", "This workstation's SafeConsult data was removed on IT's order."),
    QT_TRANSLATE_NOOP(
        "SafeConsultError", "Enter a username, a password and the 6-digit authenticator code."),
    # app.services.session: unlock on the lock screen
    QT_TRANSLATE_NOOP("SafeConsultError", "The password is not correct."),
    QT_TRANSLATE_NOOP(
        "SafeConsultError", "Too many failed attempts: you have been signed out."),
    # app.services.demo_server
    QT_TRANSLATE_NOOP(
        "SafeConsultError",
        "The demo server could not be started. See the terminal for details."),
)

# app.services.startup.StartupReport.notice: shown on the sign-in screen after a start that
# had to finish an interrupted wipe.
DEVICE_NOTICES = (
    QT_TRANSLATE_NOOP(
        "DeviceNotice",
        "A wipe of this workstation's SafeConsult data was interrupted and has now been "
        "completed."),
)

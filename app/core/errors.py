"""Errors the user may see. Their messages are safe to show: they never contain PHI.

Each carries a short ``user_message`` (what happened, what to do) separate from details
for the log, which must also be PHI-free.
"""

from __future__ import annotations


class SafeConsultError(Exception):
    """Base of every error raised on purpose by SafeConsult."""

    user_message = "Something went wrong."

    def __init__(self, detail: str = "", *, user_message: str | None = None) -> None:
        super().__init__(detail or self.user_message)
        if user_message is not None:
            self.user_message = user_message


class PolicyError(SafeConsultError):
    user_message = "The machine policy could not be read; safe defaults are in force."


class ConnectionFailed(SafeConsultError):
    user_message = "The SafeConsult server cannot be reached. Check the network and try again."


class CertificateNotPinned(ConnectionFailed):
    user_message = (
        "The server's certificate is not the one this workstation trusts. "
        "Do not continue; contact IT."
    )


class ServerError(SafeConsultError):
    """The server answered with an error. ``code`` is the protocol's error code."""

    user_message = "The server refused the request."

    def __init__(self, status: int, code: str, detail: str = "") -> None:
        super().__init__(f"{status} {code}: {detail}")
        self.status = status
        self.code = code

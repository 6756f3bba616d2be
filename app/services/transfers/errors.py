"""What can go wrong with a file transfer, as typed errors whose ``user_message`` is safe to
show (never a file name or any other patient data). ``code`` is what the transfer's row
keeps and the audit entry carries."""

from __future__ import annotations

from app.core.errors import SafeConsultError


class TransferError(SafeConsultError):
    code = "transfer_failed"
    user_message = "The file transfer did not complete. Try again."
    transfer_id: str | None = None  # set by the engine: what to resume or cancel


class DescriptorInvalid(TransferError):
    """The attachment descriptor is malformed (missing or mistyped field, bad sizes...)."""

    code = "descriptor_invalid"
    user_message = "This attachment's details are damaged, so it was not downloaded."


class ManifestSignatureInvalid(TransferError):
    """The descriptor is not signed by the device the caller says sent it."""

    code = "signature_invalid"
    user_message = (
        "This attachment is not signed by the sender's device, so it was not opened. "
        "Tell IT if it happens again."
    )


class TransferTampered(TransferError):
    """A chunk failed its tag, had the wrong size, or the digest did not match."""

    code = "tampered"
    user_message = (
        "This file was damaged or tampered with on the way, so it was not opened and "
        "nothing was kept. Ask the sender to send it again; tell IT if it happens again."
    )


class TransferInterrupted(TransferError):
    """The connection dropped and retries ran out; the transfer is kept and resumes."""

    code = "interrupted"
    user_message = (
        "The connection dropped during the file transfer. It will resume where it stopped "
        "when the connection is back."
    )


class TransferCancelled(TransferError):
    code = "cancelled"
    user_message = "The file transfer was cancelled."


class TransferRefused(TransferError):
    """The server refused (not a member, grant expired, too large, ...)."""

    code = "refused"
    user_message = (
        "The server refused the file transfer: you may no longer be a member of this "
        "consult, or the file is too large."
    )

    def __init__(self, detail: str = "", *, server_code: str = "") -> None:
        super().__init__(detail)
        self.server_code = server_code


class SourceChanged(TransferError):
    code = "source_changed"
    user_message = "The file changed while it was being sent. Send it again."


class SourceUnreadable(TransferError):
    code = "source_unreadable"
    user_message = "The file could not be read. Check that it still exists and try again."


class SourceGone(TransferError):
    """An upload's source is no longer there: in-memory data after a restart, or a stored
    file deleted meanwhile. The caller supplies it again (a new upload)."""

    code = "source_gone"
    user_message = "The data being sent is no longer available on this workstation. Send it again."


class FileTooLarge(TransferError):
    code = "too_large"
    user_message = "This file is too large to send."


class UnknownTransfer(TransferError):
    code = "unknown_transfer"
    user_message = "This file transfer is no longer known on this workstation."

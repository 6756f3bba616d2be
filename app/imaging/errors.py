"""Typed imaging errors. Messages are PHI-free: they name a transfer syntax, a size or an
attribute keyword, never a value read from the file (which could be a name or an ID)."""

from __future__ import annotations

from app.core.errors import SafeConsultError


class ImagingError(SafeConsultError):
    user_message = "The image could not be opened."


class NotDicom(ImagingError):
    user_message = "This file is not a DICOM image, or it is damaged beyond reading."


class TruncatedDicom(ImagingError):
    user_message = "This DICOM file is incomplete (it may have been cut short while copying)."


class UnsupportedTransferSyntax(ImagingError):
    user_message = "This image is compressed in a format SafeConsult cannot decode."

    def __init__(self, syntax_uid: str, syntax_name: str = "") -> None:
        label = f"{syntax_name} ({syntax_uid})" if syntax_name else syntax_uid
        super().__init__(
            f"unsupported transfer syntax {label}",
            user_message=f"This image is compressed as {label}, which SafeConsult cannot decode.",
        )
        self.syntax_uid = syntax_uid
        self.syntax_name = syntax_name

    def __reduce__(self):  # type: ignore[no-untyped-def]
        # Rebuild from our own arguments when crossing a process boundary.
        return (type(self), (self.syntax_uid, self.syntax_name))


class MissingPixelData(ImagingError):
    user_message = "This DICOM file holds no image (it may be a report or a waveform)."


class DecodeFailed(ImagingError):
    user_message = "The image data in this file could not be decoded."


class ImageTooLarge(DecodeFailed):
    user_message = "This image is larger than SafeConsult will decode safely."


class DecodeTimeout(DecodeFailed):
    user_message = "Decoding this image took too long and was stopped."


class NoWaveform(ImagingError):
    user_message = "This DICOM file holds no waveform."


class DeidentificationFailed(ImagingError):
    user_message = "The file could not be de-identified; it was not exported."

"""The imaging errors' user messages, listed for the translation tools (as app/ui/error_texts.py
does for the sign-in path): lupdate only finds strings in UI code. Messages built at run time
(the name of an unsupported transfer syntax) stay in English."""

from __future__ import annotations

from PySide6.QtCore import QT_TRANSLATE_NOOP

IMAGING_MESSAGES = (
    QT_TRANSLATE_NOOP("SafeConsultError", "The image could not be opened."),
    QT_TRANSLATE_NOOP("SafeConsultError",
                      "This file is not a DICOM image, or it is damaged beyond reading."),
    QT_TRANSLATE_NOOP("SafeConsultError",
                      "This DICOM file is incomplete (it may have been cut short while copying)."),
    QT_TRANSLATE_NOOP("SafeConsultError",
                      "This image is compressed in a format SafeConsult cannot decode."),
    QT_TRANSLATE_NOOP("SafeConsultError",
                      "This DICOM file holds no image (it may be a report or a waveform)."),
    QT_TRANSLATE_NOOP("SafeConsultError", "The image data in this file could not be decoded."),
    QT_TRANSLATE_NOOP("SafeConsultError",
                      "This image is larger than SafeConsult will decode safely."),
    QT_TRANSLATE_NOOP("SafeConsultError", "Decoding this image took too long and was stopped."),
    QT_TRANSLATE_NOOP("SafeConsultError", "This DICOM file holds no waveform."),
    QT_TRANSLATE_NOOP("SafeConsultError",
                      "The file could not be de-identified; it was not exported."),
)

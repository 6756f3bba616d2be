"""A viewer snapshot sent into a consult room (Qt-free).

The snapshot itself -- what a pane shows, with the watermark burned in, as PNG bytes in
memory -- is made by :meth:`app.services.imaging.ImagingService.snapshot`. Sending it is the
chat's attachment path: the session's transfer engine encrypts and uploads it (its own file
key, a descriptor signed by this device), then the chat sends the descriptor as an
attachment message of the room (Megolm). The PNG is handed to the engine from memory: it is
never written to disk as plaintext. The ``snapshot`` audit entry is made once the message
is sent: one entry for the user's one action (the engine is told not to add its own
``file.send`` for the blob, as for a shared study).
"""

from __future__ import annotations

from typing import Any

from app.core.errors import SafeConsultError
from app.services.imaging import ImagingService, Snapshot

SNAPSHOT_MIME = "image/png"


class SnapshotNotSent(SafeConsultError):
    user_message = "The snapshot could not be sent to the room."


def patient_room(patients: Any, room_id: str, patient_id: str) -> bool:
    """Whether ``room_id`` is linked to the patient whose ID the snapshot carries
    (app/services/room_patient.py): then the snapshot stays within the patient's consult."""
    link = patients.link(room_id) if patients is not None else None
    mrn = link.mrn.reveal().strip() if link is not None and link.mrn is not None else ""
    return bool(mrn) and mrn == patient_id.strip()


async def send_to_room(imaging: ImagingService, chat: Any, engine: Any, snapshot: Snapshot,
                       room_id: str) -> str:
    """Encrypt and upload ``snapshot`` from memory into ``room_id``, send it as an
    attachment message, audit it once. Returns the message's event id."""
    descriptor = await engine.upload_bytes(room_id, snapshot.png, name=snapshot.file_name(),
                                           mime=SNAPSHOT_MIME, audit=False)
    event_id = await chat.send_attachment(room_id, descriptor)
    imaging.record_snapshot(snapshot, "room", room_id)
    return event_id

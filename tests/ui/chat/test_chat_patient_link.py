"""The room's patient in the chat header, with real clients through the real relay: a
physician links the room (dialog checks the MRN), a nurse member sees it without the
edit buttons, the label carries the one PHI tag (the lock hides it, screen sharing paints
over it), unlinking clears it for everyone. Synthetic patient data."""

from __future__ import annotations

from app.services.room_patient import RoomPatientService
from app.ui.chat.patient_link import PatientLinkDialog
from app.ui.phi import phi_rects, phi_widgets
from tests.integration.test_chat import room_with
from tests.support.clients import create_user
from tests.ui.chat.conftest import run

SHOWN = "Jane Doe · MRN PT-0042917"


def _patients(person) -> RoomPatientService:
    session = person.client.ws.session
    service = RoomPatientService(person.chat, role=session.snapshot.user.role,
                                 audit=session.audit)
    person.view.configure(patients=service)
    return service


def _shown(widget) -> bool:
    return not widget.isHidden()


def test_link_shown_to_members_phi_tagged_and_cleared(qtbot, people, open_server,
                                                      save_screenshot):
    (alice,) = people("dr.apl")
    (nurse,) = people("nurse.bpl", creds=create_user(open_server, "nurse.bpl", role="nurse"))
    room = run(qtbot, room_with(alice.client, nurse.client))
    services = [_patients(p) for p in (alice, nurse)]
    try:
        for person in (alice, nurse):
            person.view.refresh()
            person.view.open_room(room)
        bar = alice.view.patient_bar
        assert _shown(bar) and _shown(bar.edit_button) and not _shown(bar.patient)
        assert bar.edit_button.text() == "Link to patient..."
        assert not _shown(nurse.view.patient_bar)  # no link, and a nurse may not set one

        # The dialog refuses a bad MRN and says why; a good one is accepted.
        dialog = PatientLinkDialog(None, alice.view)
        dialog.name.setText("Jane Doe")
        dialog.mrn.setText("PT;0042917")
        dialog.accept()
        assert dialog.result() != PatientLinkDialog.DialogCode.Accepted
        assert _shown(dialog.error) and "MRN" in dialog.error.text()
        assert dialog.name in phi_widgets(dialog) and dialog.mrn in phi_widgets(dialog)
        dialog.mrn.setText("PT-0042917")
        dialog.accept()
        assert dialog.result() == PatientLinkDialog.DialogCode.Accepted
        alice.view.set_patient_link(*dialog.values())
        dialog.deleteLater()
        qtbot.waitUntil(lambda: bar.patient.text() == SHOWN, timeout=10_000)
        assert bar.edit_button.text() == "Change..." and _shown(bar.clear_button)

        # The nurse sees it, without the buttons.
        run(qtbot, nurse.chat.sync_once())
        theirs = nurse.view.patient_bar
        qtbot.waitUntil(lambda: theirs.patient.text() == SHOWN, timeout=10_000)
        assert not _shown(theirs.edit_button) and not _shown(theirs.clear_button)
        # Were she to try anyway, the view says why, and nothing changes.
        nurse.view.set_patient_link("Zhang Wei", "48213377")
        qtbot.waitUntil(lambda: "Only physicians and consultants" in nurse.view.message.text(),
                        timeout=10_000)
        assert theirs.patient.text() == SHOWN

        # The one PHI tag: the lock hides it (and the label drops its text when hidden);
        # screen-share redaction covers its area.
        assert theirs.patient in phi_widgets(nurse.view)
        label_rect = theirs.patient.rect().translated(theirs.patient.mapTo(nurse.view,
                                                                            theirs.patient.rect().topLeft()))
        assert any(r.contains(label_rect) for r in phi_rects(nurse.view))
        save_screenshot(alice.view, "chat-patient-link.png")
        theirs.patient.hide()
        assert theirs.patient.text() == ""
        theirs.patient.show()
        assert theirs.patient.text() == SHOWN

        # Unlinked by the physician: gone on both.
        alice.view.clear_patient_link(confirm=False)
        qtbot.waitUntil(lambda: not _shown(bar.patient), timeout=10_000)
        run(qtbot, nurse.chat.sync_once())
        qtbot.waitUntil(lambda: not _shown(theirs), timeout=10_000)
    finally:
        for service in services:
            service.close()

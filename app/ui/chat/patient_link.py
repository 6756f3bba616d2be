"""The room's patient in the chat room header (app/services/room_patient.py).

``PatientLinkBar`` sits under the room title: "Patient: <name> · MRN <mrn>" -- the name and
MRN in a :class:`~app.ui.phi.PhiLabel`, the one PHI tag, so the lock hides it and screen
sharing paints over it -- with *Change...* and *Unlink* for those who may (physicians and
consultants in the room), or *Link to patient...* when the room has none. Members who may not
edit see the link only. ``PatientLinkDialog`` asks for the name and MRN (its fields are
PHI-tagged too).
"""

from __future__ import annotations

from PySide6.QtCore import QCoreApplication, Qt, Signal
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QFrame,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from app.core.phi import Phi
from app.services.room_patient import MAX_MRN, MAX_NAME, MalformedLink, PatientLink, check_patient
from app.ui.i18n import fill
from app.ui.phi import PhiLabel, mark_phi


def patient_text(link: PatientLink) -> Phi[str]:
    """"Jane Doe · MRN PT-0042917", still tagged."""
    assert link.name is not None and link.mrn is not None
    return Phi(fill(QCoreApplication.translate("PatientLinkBar", "%1 · MRN %2"),
                    link.name.reveal(), link.mrn.reveal()))


class PatientLinkBar(QFrame):
    """Emits ``edit`` (set or change) and ``clear``."""

    edit = Signal()
    clear = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("patientLinkBar")
        self.caption = QLabel()
        self.caption.setObjectName("patientCaption")
        self.caption.setProperty("role", "subtle")
        self.patient = PhiLabel()
        self.patient.setObjectName("patientLink")
        self.patient.setStyleSheet("QLabel#patientLink { font-weight: 600; }")
        self.edit_button = QPushButton()
        self.edit_button.setObjectName("patientLinkEdit")
        self.edit_button.setFlat(True)
        self.edit_button.clicked.connect(self.edit)
        self.clear_button = QPushButton()
        self.clear_button.setObjectName("patientLinkClear")
        self.clear_button.setFlat(True)
        self.clear_button.clicked.connect(self.clear)
        row = QHBoxLayout(self)
        row.setContentsMargins(0, 2, 0, 2)
        row.setSpacing(6)
        row.addWidget(self.caption)
        row.addWidget(self.patient)
        row.addWidget(self.edit_button)
        row.addWidget(self.clear_button)
        row.addStretch(1)
        self.link: PatientLink | None = None
        self.may_edit = False
        self.set_link(None, may_edit=False)

    def set_link(self, link: PatientLink | None, *, may_edit: bool) -> None:
        translate = QCoreApplication.translate
        self.link, self.may_edit = link, may_edit
        linked = link is not None and link.linked
        self.caption.setText(translate("PatientLinkBar", "Patient:") if linked else "")
        self.caption.setVisible(linked)
        self.patient.setValue(patient_text(link) if linked else None)  # type: ignore[arg-type]
        self.patient.setVisible(linked)
        self.edit_button.setText(translate("PatientLinkBar", "Change...") if linked
                                 else translate("PatientLinkBar", "Link to patient..."))
        self.edit_button.setVisible(may_edit)
        self.clear_button.setText(translate("PatientLinkBar", "Unlink"))
        self.clear_button.setVisible(may_edit and linked)
        self.setVisible(linked or may_edit)


class PatientLinkDialog(QDialog):
    """Name and MRN of the room's patient; ``values()`` once accepted."""

    def __init__(self, link: PatientLink | None = None, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        translate = QCoreApplication.translate
        self.setObjectName("patientLinkDialog")
        self.setWindowTitle(translate("PatientLinkDialog", "Link this room to a patient"))
        intro = QLabel(translate(
            "PatientLinkDialog", "Only the members of this room will see the patient. It is "
            "sent end-to-end encrypted; the server never sees it."))
        intro.setWordWrap(True)
        self.name = QLineEdit()
        self.name.setObjectName("patientName")
        self.name.setMaxLength(MAX_NAME)
        self.mrn = QLineEdit()
        self.mrn.setObjectName("patientMrn")
        self.mrn.setMaxLength(MAX_MRN)
        for field in (self.name, self.mrn):
            mark_phi(field)
        if link is not None and link.name is not None and link.mrn is not None:
            self.name.setText(link.name.reveal())
            self.mrn.setText(link.mrn.reveal())
        self.error = QLabel()
        self.error.setObjectName("patientLinkError")
        self.error.setProperty("role", "error")
        self.error.setWordWrap(True)
        self.error.hide()
        form = QFormLayout()
        form.addRow(translate("PatientLinkDialog", "Patient name"), self.name)
        form.addRow(translate("PatientLinkDialog", "MRN"), self.mrn)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok
                                   | QDialogButtonBox.StandardButton.Cancel)
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(intro)
        layout.addLayout(form)
        layout.addWidget(self.error)
        layout.addWidget(buttons, 0, Qt.AlignmentFlag.AlignRight)

    def values(self) -> tuple[str, str]:
        return self.name.text(), self.mrn.text()

    def accept(self) -> None:
        try:
            check_patient(*self.values())
        except MalformedLink:
            self.error.setText(QCoreApplication.translate(
                "PatientLinkDialog", "Enter the patient's name and an MRN of letters, digits, "
                "spaces or . / _ -"))
            self.error.show()
            return
        super().accept()

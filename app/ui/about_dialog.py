"""About SafeConsult: what is running, under which policy, talking to which server.

IT asks for these facts on the phone ("which policy does the cart have?"), so they are all on
one screen and selectable for copying. No patient data here.
"""

from __future__ import annotations

from PySide6.QtCore import QEvent, Qt
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QLabel,
    QLayout,
    QVBoxLayout,
    QWidget,
)

from app.ui.about_info import AboutInfo


class AboutDialog(QDialog):
    def __init__(self, info: AboutInfo, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("aboutDialog")
        self._info = info
        self.heading = QLabel("SafeConsult")
        self.heading.setProperty("role", "heading")
        self.form = QFormLayout()
        self.form.setSpacing(10)
        self._rows: dict[str, tuple[QLabel, QLabel]] = {}
        for key in ("version", "policy", "signer", "problem", "data", "server"):
            name, value = QLabel(), QLabel()
            name.setAlignment(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignTop)
            value.setObjectName(f"about_{key}")
            # Paths and URLs are not wrapped (QLabel breaks them badly); the dialog widens.
            value.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse
                                          | Qt.TextInteractionFlag.TextSelectableByKeyboard)
            self.form.addRow(name, value)
            self._rows[key] = (name, value)
        self._rows["problem"][1].setProperty("role", "error")
        self._rows["problem"][1].setWordWrap(True)  # prose: wraps at spaces
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        # Fixed to its contents: rows of any length are shown whole, never clipped.
        layout.setSizeConstraint(QLayout.SizeConstraint.SetFixedSize)
        layout.setContentsMargins(24, 20, 24, 16)
        layout.setSpacing(16)
        layout.addWidget(self.heading)
        layout.addLayout(self.form)
        layout.addWidget(buttons)
        self.form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)
        self.retranslate()

    def value(self, key: str) -> str:
        """The text shown for one row (for tests and for IT's screenshots)."""
        return self._rows[key][1].text()

    def retranslate(self) -> None:
        info, policy = self._info, self._info.policy
        self.setWindowTitle(self.tr("About SafeConsult"))
        from_defaults = policy.source == "defaults"
        rows = {
            "version": (self.tr("Version"), info.version),
            "policy": (self.tr("Machine policy"),
                       self.tr("Built-in defaults") if from_defaults else policy.source),
            "signer": (self.tr("Policy signed by"),
                       policy.signer or (self.tr("Not applicable") if from_defaults
                                         else self.tr("Not signed"))),
            "problem": (self.tr("Policy problem"), info.policy_problem),
            "data": (self.tr("Data location"), str(info.data_dir)),
            "server": (self.tr("Server"), info.server_url),
        }
        for key, (name, value) in rows.items():
            name_label, value_label = self._rows[key]
            name_label.setText(name)
            value_label.setText(value)
        problem_label, problem_value = self._rows["problem"]
        problem_label.setVisible(bool(info.policy_problem))
        problem_value.setVisible(bool(info.policy_problem))

    def changeEvent(self, event: QEvent) -> None:
        if event.type() == QEvent.Type.LanguageChange:
            self.retranslate()
        super().changeEvent(event)

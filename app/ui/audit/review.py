"""The auditor's access review: the audit log with filters, the chain's state, anomaly
alerts, the break-glass review queue with sign-off, and exports.

Everything here is read from the server under the auditor's role; nothing alters the log.
Tables of audit content name consults (hence patients), users and reasons: they are
PHI-tagged, so the lock hides them and a shared screen covers them.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QDateTime, QEvent, Qt
from PySide6.QtWidgets import (
    QAbstractItemView,
    QCheckBox,
    QComboBox,
    QDateTimeEdit,
    QFileDialog,
    QFormLayout,
    QGridLayout,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QPlainTextEdit,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from app.services.access_review import (
    AccessReviewService,
    Alert,
    ApprovalRequest,
    BreakGlassEntry,
    ChainReport,
    ExportResult,
    LogEntry,
    ReviewFilter,
    SearchResult,
    review_decision,
)
from app.ui.asyncbridge import TaskRunner
from app.ui.audit.requests import PageRequests
from app.ui.audit.texts import clock_time, fit_bold, timestamp
from app.ui.form_error import form_error_label, show_form_error
from app.ui.i18n import fill
from app.ui.phi import PhiLabel, mark_phi

# Actions offered in the filter (the field stays editable for any other, or a prefix*).
ACTION_CHOICES = (
    "", "login", "client.*", "client.file.*", "client.image.*", "room.*", "room.break_glass",
    "client.break_glass", "break_glass.review", "device.*", "audit.export", "policy.change",
)
SHOWN_ENTRIES = 1000  # rows in the table; exports carry every match
EXPORT_SUFFIX = {"csv": "csv", "jsonl": "jsonl", "fhir": "json"}


def _table(columns: int, name: str) -> QTableWidget:
    table = QTableWidget(0, columns)
    table.setObjectName(name)
    table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
    table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
    table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
    table.verticalHeader().hide()
    table.setAlternatingRowColors(True)
    header = table.horizontalHeader()
    header.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
    header.setStretchLastSection(True)
    return mark_phi(table)  # type: ignore[return-value]


def _fill_row(table: QTableWidget, row: int, cells: list[str]) -> None:
    for column, text in enumerate(cells):
        item = QTableWidgetItem(text)
        item.setToolTip(text)  # the whole text where the column cuts it
        table.setItem(row, column, item)


class ChainStatusLabel(QLabel):
    """"Audit chain verified" in green, or the first broken entry in red."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("chainStatus")
        self.setWordWrap(True)
        self.report: ChainReport | None = None
        self.state = "unknown"

    def show_report(self, report: ChainReport | None) -> None:
        self.report = report
        if report is None:
            self.state = "unknown"
            self.setText(self.tr("Audit chain: not checked yet"))
            colour = "#555555"
        elif report.ok:
            self.state = "ok"
            if report.devices:
                self.setText(fill(self.tr(
                    "✔ Audit chain verified: %1 entries; all %2 device chains intact"),
                    str(report.server.entries), str(len(report.devices))))
            else:
                self.setText(fill(self.tr(
                    "✔ Audit chain verified: %1 entries; no device chains yet"),
                    str(report.server.entries)))
            colour = "#1b6e2a"
        else:
            self.state = "broken"
            parts = []
            if not report.server.ok:
                parts.append(fill(self.tr("first broken entry #%1 (%2)"),
                                  str(report.server.first_bad_seq or "?"),
                                  report.server.problem))
            for device in report.broken_devices:
                gaps = ", ".join(f"{a}–{b}" for a, b in device.gaps)
                parts.append(fill(self.tr("device %1: %2 problems, gaps %3"),
                                  device.device_id[:12], str(len(device.problems)),
                                  gaps or "—"))
            self.setText(self.tr("✖ Audit chain broken: ") + "; ".join(parts))
            colour = "#a3241a"
        self.setStyleSheet(f"QLabel#chainStatus {{ color: {colour}; font-weight: 600; }}")


class FilterForm(QWidget):
    """User, device, consult (patient), action, outcome and a time range."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.user = QLineEdit()
        self.user.setObjectName("filterUser")
        self.device = QLineEdit()
        self.device.setObjectName("filterDevice")
        self.room = QLineEdit()
        self.room.setObjectName("filterRoom")
        mark_phi(self.room)
        self.action = QComboBox()
        self.action.setObjectName("filterAction")
        self.action.setEditable(True)
        self.action.addItems(ACTION_CHOICES)
        self.outcome = QComboBox()
        self.outcome.setObjectName("filterOutcome")
        for value in ("", "ok", "refused", "failed"):
            self.outcome.addItem(value, value)
        self.use_period = QCheckBox()
        self.use_period.setObjectName("filterUsePeriod")
        now = QDateTime.currentDateTime()
        self.from_time = QDateTimeEdit(now.addDays(-7))
        self.to_time = QDateTimeEdit(now.addSecs(3600))
        for edit in (self.from_time, self.to_time):
            edit.setCalendarPopup(True)
            edit.setDisplayFormat("yyyy-MM-dd HH:mm")
            edit.setEnabled(False)
        self.use_period.toggled.connect(self.from_time.setEnabled)
        self.use_period.toggled.connect(self.to_time.setEnabled)
        self.search = QPushButton()
        self.search.setObjectName("filterSearch")
        self.search.setDefault(True)
        self.clear = QPushButton()
        self.clear.clicked.connect(self.reset)
        self.labels = [QLabel() for _ in range(6)]
        grid = QGridLayout(self)
        grid.setContentsMargins(0, 0, 0, 0)
        grid.setHorizontalSpacing(10)
        grid.setVerticalSpacing(4)
        fields = [self.user, self.device, self.room, self.action, self.outcome]
        for i, (label, field) in enumerate(zip(self.labels[:5], fields, strict=True)):
            label.setBuddy(field)
            grid.addWidget(label, i // 3 * 2, i % 3)
            grid.addWidget(field, i // 3 * 2 + 1, i % 3)
        # The time range goes in the third column of the second row, buttons below it all.
        self.labels[5].setBuddy(self.use_period)
        grid.addWidget(self.labels[5], 2, 2)
        period = QHBoxLayout()
        period.setSpacing(4)
        period.addWidget(self.use_period)
        period.addWidget(self.from_time, 1)
        period.addWidget(QLabel("–"))
        period.addWidget(self.to_time, 1)
        grid.addLayout(period, 3, 2)
        buttons = QHBoxLayout()
        buttons.addStretch(1)
        buttons.addWidget(self.clear)
        buttons.addWidget(self.search)
        grid.addLayout(buttons, 4, 0, 1, 3)
        for column in range(3):
            grid.setColumnStretch(column, 1)
        grid.setColumnStretch(2, 2)
        self.retranslate()

    def value(self) -> ReviewFilter:
        period = self.use_period.isChecked()
        return ReviewFilter(
            username=self.user.text(), device_id=self.device.text(), room_id=self.room.text(),
            action=self.action.currentText(), outcome=str(self.outcome.currentData() or ""),
            from_ms=self.from_time.dateTime().toMSecsSinceEpoch() if period else None,
            to_ms=self.to_time.dateTime().toMSecsSinceEpoch() if period else None)

    def reset(self) -> None:
        for edit in (self.user, self.device, self.room):
            edit.clear()
        self.action.setCurrentIndex(0)
        self.outcome.setCurrentIndex(0)
        self.use_period.setChecked(False)

    def retranslate(self) -> None:
        names = (self.tr("&User"), self.tr("&Device"), self.tr("Consult / &patient"),
                 self.tr("&Action"), self.tr("&Outcome"), self.tr("&Time"))
        for label, name in zip(self.labels, names, strict=True):
            label.setText(name)
        self.user.setPlaceholderText(self.tr("user name"))
        self.device.setPlaceholderText(self.tr("device id"))
        self.room.setPlaceholderText(self.tr("consult id"))
        self.action.lineEdit().setPlaceholderText(self.tr("any"))
        self.action.setToolTip(self.tr("An action, or a prefix ending in * (client.file.*)"))
        self.outcome.setItemText(0, self.tr("any"))
        self.use_period.setText(self.tr("only"))
        self.use_period.setToolTip(self.tr("Only entries from the first time (inclusive) to "
                                           "the second (exclusive)"))
        self.search.setText(self.tr("&Search"))
        fit_bold(self.search)
        self.clear.setText(self.tr("Clear"))


class AccessReviewPanel(PageRequests, QWidget):
    """The auditor's page in the Admin area."""

    def __init__(self, service: AccessReviewService, runner: TaskRunner,
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("accessReview")
        self._service, self._runner = service, runner
        self.entries: list[LogEntry] = []
        self.alerts: list[Alert] = []
        self.queue: list[BreakGlassEntry] = []
        self.pending_export: int | None = None

        self.chain = ChainStatusLabel()
        self.verify_button = QPushButton()
        self.verify_button.setObjectName("verifyChain")
        self.verify_button.clicked.connect(self.check_chain)
        self.error = form_error_label("formError")
        top = QHBoxLayout()
        top.addWidget(self.chain, 1)
        top.addWidget(self.verify_button)

        self.tabs = QTabWidget()
        self.tabs.setObjectName("reviewTabs")
        self.tabs.addTab(self._build_log(), "")
        self.tabs.addTab(self._build_alerts(), "")
        self.tabs.addTab(self._build_break_glass(), "")
        self.tabs.addTab(self._build_export(), "")

        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(top)
        layout.addWidget(self.error)
        layout.addWidget(self.tabs, 1)
        self.retranslate()

    # -- building ----------------------------------------------------------------------------

    def _build_log(self) -> QWidget:
        page = QWidget()
        self.filters = FilterForm()
        self.filters.search.clicked.connect(self.search)
        for edit in (self.filters.user, self.filters.device, self.filters.room):
            edit.returnPressed.connect(self.search)
        self.log_table = _table(7, "auditTable")
        self.log_count = QLabel()
        self.log_count.setProperty("role", "subtle")
        layout = QVBoxLayout(page)
        layout.addWidget(self.filters)
        layout.addWidget(self.log_count)
        layout.addWidget(self.log_table, 1)
        return page

    def _build_alerts(self) -> QWidget:
        page = QWidget()
        self.alert_table = _table(5, "alertTable")
        self.alert_refresh = QPushButton()
        self.alert_refresh.clicked.connect(self.load_alerts)
        row = QHBoxLayout()
        self.alert_count = QLabel()
        row.addWidget(self.alert_count, 1)
        row.addWidget(self.alert_refresh)
        layout = QVBoxLayout(page)
        layout.addLayout(row)
        layout.addWidget(self.alert_table, 1)
        return page

    def _build_break_glass(self) -> QWidget:
        page = QWidget()
        self.bg_table = _table(5, "breakGlassTable")
        self.bg_table.itemSelectionChanged.connect(self._bg_selected)
        self.bg_show_all = QCheckBox()
        self.bg_show_all.setObjectName("breakGlassShowAll")
        self.bg_show_all.toggled.connect(self.load_break_glass)
        self.bg_refresh = QPushButton()
        self.bg_refresh.clicked.connect(self.load_break_glass)
        self.bg_count = QLabel()
        row = QHBoxLayout()
        row.addWidget(self.bg_count, 1)
        row.addWidget(self.bg_show_all)
        row.addWidget(self.bg_refresh)
        self.bg_reason_title = QLabel()
        self.bg_reason = PhiLabel()
        self.bg_reason.setObjectName("breakGlassReasonShown")
        self.bg_reason.setWordWrap(True)
        self.bg_reason.setStyleSheet("QLabel#breakGlassReasonShown { background: palette(base);"
                                     " border: 1px solid palette(mid); padding: 6px; }")
        self.bg_note = QPlainTextEdit()
        self.bg_note.setObjectName("breakGlassNote")
        self.bg_note.setMaximumHeight(70)
        self.bg_note.setTabChangesFocus(True)
        mark_phi(self.bg_note)
        self.bg_approve = QPushButton()
        self.bg_approve.setObjectName("breakGlassApprove")
        self.bg_flag = QPushButton()
        self.bg_flag.setObjectName("breakGlassFlag")
        self.bg_approve.clicked.connect(lambda: self.sign_off("approved"))
        self.bg_flag.clicked.connect(lambda: self.sign_off("flagged"))
        self.bg_status = QLabel()
        self.bg_status.setObjectName("breakGlassStatus")
        self.bg_status.setWordWrap(True)
        self.bg_note_label = QLabel()
        self.bg_note_label.setBuddy(self.bg_note)
        form = QFormLayout()
        form.addRow(self.bg_reason_title, self.bg_reason)
        form.addRow(self.bg_note_label, self.bg_note)
        buttons = QHBoxLayout()
        buttons.addWidget(self.bg_status, 1)
        buttons.addWidget(self.bg_flag)
        buttons.addWidget(self.bg_approve)
        layout = QVBoxLayout(page)
        layout.addLayout(row)
        layout.addWidget(self.bg_table, 1)
        layout.addLayout(form)
        layout.addLayout(buttons)
        self._bg_selected()
        return page

    def _build_export(self) -> QWidget:
        page = QWidget()
        self.export_intro = QLabel()
        self.export_intro.setWordWrap(True)
        self.export_format = QComboBox()
        self.export_format.setObjectName("exportFormat")
        for fmt in ("csv", "jsonl", "fhir"):
            self.export_format.addItem("", fmt)
        self.export_button = QPushButton()
        self.export_button.setObjectName("exportButton")
        self.export_button.clicked.connect(self.export)
        self.export_policy = QLabel()
        self.export_policy.setObjectName("exportPolicy")
        self.export_policy.setWordWrap(True)
        self.export_status = QLabel()
        self.export_status.setObjectName("exportStatus")
        self.export_status.setWordWrap(True)
        self.export_collect = QPushButton()
        self.export_collect.setObjectName("exportCollect")
        self.export_collect.clicked.connect(self.collect_export)
        self.export_collect.hide()
        row = QHBoxLayout()
        row.addWidget(self.export_format)
        row.addWidget(self.export_button)
        row.addStretch(1)
        layout = QVBoxLayout(page)
        layout.addWidget(self.export_intro)
        layout.addWidget(self.export_policy)
        layout.addLayout(row)
        layout.addWidget(self.export_status)
        layout.addWidget(self.export_collect, 0, Qt.AlignmentFlag.AlignLeft)
        layout.addStretch(1)
        # Where exports go without asking (tests); None asks with a file dialog.
        self.export_dir: Path | None = None
        self.last_export: Path | None = None
        return page

    # -- loading -----------------------------------------------------------------------------

    def load_all(self) -> None:
        self.check_chain()
        self.search()
        self.load_alerts()
        self.load_break_glass()
        self.load_policy()


    def check_chain(self) -> None:
        self._run(self._service.chain(), self.chain.show_report)

    def search(self) -> None:
        self._run(self._service.search_newest(self.filters.value(), limit=SHOWN_ENTRIES),
                  self._show_entries)

    def _show_entries(self, result: SearchResult) -> None:
        entries = self.entries = result.entries
        table = self.log_table
        table.setRowCount(len(entries))
        for row, e in enumerate(entries):
            _fill_row(table, row, [
                timestamp(e.ts_ms), self._service.name(e.actor_user_id), e.action, e.outcome,
                e.room_id or "", (e.device_id or "")[:12], str(e.seq)])
            table.item(row, 5).setToolTip(e.device_id or "")  # the whole id, for the filter
            if e.outcome != "ok":
                table.item(row, 3).setForeground(Qt.GlobalColor.darkRed)
        if len(entries) < result.matched or not result.complete:
            self.log_count.setText(fill(self.tr(
                "The newest %1 of %2%3 matching entries: narrow the filters to see the "
                "others, or export them."), str(len(entries)), str(result.matched),
                "" if result.complete else "+"))
        else:
            self.log_count.setText(fill(self.tr("%1 entries (newest first)"),
                                        str(len(entries))))

    def load_alerts(self) -> None:
        self._run(self._service.alerts(), self._show_alerts)

    def _show_alerts(self, alerts: list[Alert]) -> None:
        self.alerts = alerts
        self.alert_table.setRowCount(len(alerts))
        for row, a in enumerate(alerts):
            _fill_row(self.alert_table, row, [
                timestamp(a.ts_ms), self._rule_text(a.rule), a.username or "",
                str(a.count), a.message])
        self.alert_count.setText(fill(self.tr("%1 alerts"), str(len(alerts))))
        self.tabs.setTabText(1, fill(self.tr("Alerts (%1)"), str(len(alerts))))

    def _rule_text(self, rule: str) -> str:
        return {
            "bulk_access": self.tr("Bulk downloads/exports"),
            "out_of_hours": self.tr("Out of hours"),
            "break_glass": self.tr("Emergency access"),
            "failed_logins": self.tr("Failed logins"),
            "new_network": self.tr("New network"),
        }.get(rule, rule)

    def load_break_glass(self) -> None:
        self._run(self._service.break_glass_queue(
            unreviewed_only=not self.bg_show_all.isChecked()), self._show_queue)

    def _show_queue(self, entries: list[BreakGlassEntry]) -> None:
        self.queue = entries
        table = self.bg_table
        table.setRowCount(len(entries))
        for row, e in enumerate(entries):
            decision, _ = review_decision(e)
            _fill_row(table, row, [
                timestamp(e.created_ms)[:16], self._service.name(e.user_id), e.room_id,
                clock_time(e.expires_ms), self._decision_text(decision)])
        waiting = sum(1 for e in entries if e.reviewed_ms is None)
        self.bg_count.setText(fill(self.tr("%1 waiting for review"), str(waiting)))
        self.tabs.setTabText(2, fill(self.tr("Emergency access review (%1)"), str(waiting)))
        if entries:
            table.selectRow(0)
        self._bg_selected()

    def _decision_text(self, decision: str) -> str:
        return {
            "pending": self.tr("Waiting for review"), "approved": self.tr("Approved"),
            "flagged": self.tr("Flagged"), "reviewed": self.tr("Reviewed"),
        }.get(decision, decision)

    def selected_break_glass(self) -> BreakGlassEntry | None:
        rows = self.bg_table.selectionModel().selectedRows()
        if not rows or rows[0].row() >= len(self.queue):
            return None
        return self.queue[rows[0].row()]

    def _bg_selected(self) -> None:
        entry = self.selected_break_glass()
        self.bg_reason.setValue(entry.reason if entry is not None else None)
        pending = entry is not None and entry.reviewed_ms is None
        for widget in (self.bg_approve, self.bg_flag, self.bg_note):
            widget.setEnabled(pending)
        if entry is not None and not pending:
            decision, note = review_decision(entry)
            self.bg_status.setText(fill(self.tr("%1 by %2 on %3"), self._decision_text(decision),
                                        self._service.name(entry.reviewed_by),
                                        timestamp(entry.reviewed_ms or 0)))
            self.bg_note.setPlainText(note.reveal() if note is not None else "")
        else:
            self.bg_status.clear()
            self.bg_note.clear()

    def sign_off(self, decision: str) -> None:
        entry = self.selected_break_glass()
        if entry is None or entry.reviewed_ms is not None:
            return
        note = self.bg_note.toPlainText()
        self.bg_approve.setEnabled(False)
        self.bg_flag.setEnabled(False)
        self._run(self._service.sign_off(entry.id, decision, note), self._signed_off,
                  self._sign_off_failed)

    def _sign_off_failed(self, message: str) -> None:
        show_form_error(self.error, message)
        entry = self.selected_break_glass()
        pending = entry is not None and entry.reviewed_ms is None
        self.bg_approve.setEnabled(pending)  # the note typed so far stays
        self.bg_flag.setEnabled(pending)

    def _signed_off(self, entry: BreakGlassEntry) -> None:
        self.bg_note.clear()
        self.load_break_glass()

    # -- export ------------------------------------------------------------------------------

    def load_policy(self) -> None:
        self._run(self._service.policy(), self._show_policy)
        self._run(self._service.my_export_requests(), self._show_requests)

    def _show_policy(self, policy) -> None:
        self.export_policy.setText(
            self.tr("Exports need a second person's approval (an IT administrator) before "
                    "you can download them.") if policy.export_approval else
            self.tr("Exports are available at once. Each one is recorded in the audit log."))

    def _show_requests(self, requests: list[ApprovalRequest]) -> None:
        approved = [r for r in requests if r.state == "approved"]
        pending = [r for r in requests if r.state == "pending"]
        if approved:
            self.pending_export = approved[0].id
            self.export_status.setText(fill(self.tr(
                "Export request #%1 was approved: download it once."), str(approved[0].id)))
            self.export_collect.show()
        elif pending:
            self.pending_export = pending[0].id
            self.export_status.setText(fill(self.tr(
                "Waiting for a second approval (request #%1). An IT administrator must "
                "approve it; then download it here."), str(pending[0].id)))
            self.export_collect.show()
        else:
            self.export_collect.hide()

    def export(self) -> None:
        fmt = str(self.export_format.currentData())
        self.export_button.setEnabled(False)
        self._run(self._service.export(fmt, self.filters.value()),
                  lambda result: self._exported(fmt, result), self._export_failed)

    def _export_failed(self, message: str) -> None:
        self.export_button.setEnabled(True)
        show_form_error(self.error, message)

    def _exported(self, fmt: str, result: ExportResult) -> None:
        self.export_button.setEnabled(True)
        if result.pending:
            self.pending_export = result.request_id
            self.export_status.setText(fill(self.tr(
                "Waiting for a second approval (request #%1). An IT administrator must "
                "approve it; then download it here."), str(result.request_id)))
            self.export_collect.show()
            return
        self._save(fmt, result)

    def collect_export(self) -> None:
        if self.pending_export is None:
            return
        request_id = self.pending_export
        self._run(self._service.collect_export(request_id), lambda r: self._collected(r))

    def _collected(self, result: ExportResult) -> None:
        self.pending_export = None
        self.export_collect.hide()
        fmt = "fhir" if "fhir" in result.media_type else (
            "jsonl" if "ndjson" in result.media_type else "csv")
        self._save(fmt, result)

    def _save(self, fmt: str, result: ExportResult) -> None:
        name = f"audit-export.{EXPORT_SUFFIX[fmt]}"
        if self.export_dir is not None:
            target = str(self.export_dir / name)
        else:
            target, _ = QFileDialog.getSaveFileName(self, self.tr("Save the export"), name)
        if not target:
            self.export_status.setText(self.tr("Export not saved."))
            return
        try:
            Path(target).write_bytes(result.content or b"")
        except OSError:
            show_form_error(self.error, self.tr("The export could not be written there. "
                                                "Choose another folder."))
            return
        self.last_export = Path(target)
        self.export_status.setText(fill(self.tr("Export saved: %1"), Path(target).name))

    # -- texts -------------------------------------------------------------------------------

    def retranslate(self) -> None:
        self.verify_button.setText(self.tr("Check chain"))
        if self.chain.report is None:
            self.chain.show_report(None)
        self.tabs.setTabText(0, self.tr("Audit log"))
        self.tabs.setTabText(1, self.tr("Alerts"))
        self.tabs.setTabText(2, self.tr("Emergency access review"))
        self.tabs.setTabText(3, self.tr("Export"))
        self.log_table.setHorizontalHeaderLabels([
            self.tr("Time"), self.tr("User"), self.tr("Action"), self.tr("Outcome"),
            self.tr("Consult / patient"), self.tr("Device"), self.tr("#")])
        self.alert_table.setHorizontalHeaderLabels([
            self.tr("Time"), self.tr("Rule"), self.tr("User"), self.tr("Count"),
            self.tr("What")])
        self.alert_refresh.setText(self.tr("Refresh"))
        self.bg_table.setHorizontalHeaderLabels([
            self.tr("Requested"), self.tr("User"), self.tr("Consult / patient"),
            self.tr("Access until"), self.tr("Review")])
        self.bg_show_all.setText(self.tr("Show signed-off"))
        self.bg_refresh.setText(self.tr("Refresh"))
        self.bg_reason_title.setText(self.tr("Reason given"))
        self.bg_note_label.setText(self.tr("Reviewer's &note"))
        self.bg_note.setPlaceholderText(self.tr("What you checked, and with whom"))
        self.bg_approve.setText(self.tr("&Approve (justified)"))
        self.bg_flag.setText(self.tr("&Flag for follow-up"))
        self.export_intro.setText(self.tr(
            "Exports the entries that match the filters of the Audit log tab. FHIR gives a "
            "Bundle of AuditEvent resources."))
        for i, text in enumerate((self.tr("CSV"), self.tr("JSON lines"),
                                  self.tr("HL7 FHIR AuditEvent"))):
            self.export_format.setItemText(i, text)
        self.export_button.setText(self.tr("Export…"))
        self.export_collect.setText(self.tr("Download approved export"))
        self.filters.retranslate()

    def changeEvent(self, event: QEvent) -> None:
        if event.type() == QEvent.Type.LanguageChange:
            self.retranslate()
        super().changeEvent(event)

"""Chat: end-to-end encrypted conversations with colleagues.

Left, the conversations (unread counts, invitations, *New consult room*) and a search over
the history this device holds; in the middle the open conversation (timeline, a warning when
someone's device is new or changed, the composer); right, its members with each device's
trust, where a device can be verified by comparing emoji.

Dependencies come through :meth:`ChatView.configure` (the workspace builds its views without
arguments; ``app/ui/workspace_setup.py`` configures them per sign-in): the window's
TaskRunner, the signed-in session's :class:`~app.services.chat.ChatService` and
:class:`~app.services.verification.VerificationService`. Until then the view shows what will
appear here. Messages, the composer and search results are PHI-tagged: the lock hides them
and screen sharing paints over them.

Files: with the session's :class:`~app.services.transfers.TransferEngine` (one per session,
shared with study sharing) *Attach* uploads a file and sends it as an attachment message;
a file message offers Download, and once the engine has verified it (signature against the
sending device's key as this device knows it, digest) Open -- an in-app preview from
memory -- and Save as... (decrypted only to the chosen path, audited as ``file.export``).
"""

from __future__ import annotations

import secrets
from pathlib import Path

from PySide6.QtCore import QCoreApplication, Qt, Signal
from PySide6.QtGui import QKeySequence, QShortcut, QShowEvent
from PySide6.QtWidgets import (
    QApplication,
    QFileDialog,
    QFrame,
    QHBoxLayout,
    QInputDialog,
    QLabel,
    QLineEdit,
    QMessageBox,
    QPushButton,
    QSplitter,
    QStackedWidget,
    QVBoxLayout,
    QWidget,
)

from app.core.chat import ChatMessage, Notification, UndecryptedEvent
from app.services.app_state import AppState
from app.services.chat import AttachmentInfo, ChatService, SendFailed
from app.services.room_patient import RoomPatientService
from app.services.transfers import TransferEngine, TransferProgress, download_id
from app.services.transfers import progress as phases
from app.services.transfers.chat_files import ChatFiles, Interrupted, ResumingTransfer
from app.services.verification import VerificationService, VerificationStatus
from app.ui.asyncbridge import TaskRunner, user_message
from app.ui.chat.composer import EDIT, REPLY, Composer
from app.ui.chat.device_banner import DeviceWarningBanner
from app.ui.chat.members import DeviceEntry, MemberEntry, MemberPanel
from app.ui.chat.patient_link import PatientLinkBar, PatientLinkDialog
from app.ui.chat.room_list import RoomEntry, RoomList
from app.ui.chat.search import SearchBox, SearchHit, SearchResults
from app.ui.chat.texts import display_name, time_text
from app.ui.chat.timeline import FAILED, SENT, Timeline, quote_text
from app.ui.chat.transfers import AttachmentBox, preview_dialog, previewable, progress_text
from app.ui.chat.urgent import DisappearBox, PresenceBox, UrgentBanner, presence_text
from app.ui.chat.verification_dialog import VerificationDialog
from app.ui.i18n import fill
from app.ui.observe import observe
from app.ui.views.placeholder import PlaceholderView

HISTORY_PAGE = 100  # messages shown when a room opens, and loaded per scroll to the top


class ChatView(PlaceholderView):
    unreadChanged = Signal(int)  # unread messages and invitations, for the navigation

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.chat: ChatService | None = None
        self.verification: VerificationService | None = None
        self._runner = TaskRunner(self)
        self.current_room: str | None = None
        self.dialogs: dict[str, VerificationDialog] = {}
        self._app_state: AppState | None = None
        self._deferred: list[VerificationStatus] = []
        self.transfers: TransferEngine | None = None
        self._downloads: dict[str, str] = {}  # transfer id -> event id (running downloads)
        self._files: dict[str, str] = {}  # event id -> file id (downloaded and verified)
        self.chat_files: ChatFiles | None = None  # chat attachments that survive a restart
        self._resumed: set[str] = set()  # transfer ids resumed at sign-in (ChatFiles)
        self.patients: RoomPatientService | None = None  # the room's patient link
        self._build()
        self.retranslate()

    @staticmethod
    def title() -> str:
        return QCoreApplication.translate("ChatView", "Chat")

    def texts(self) -> tuple[str, str, str]:
        return (
            QCoreApplication.translate("ChatView", "No conversations yet"),
            QCoreApplication.translate(
                "ChatView",
                "Secure messages with your colleagues will appear here. They are encrypted "
                "on this device and can be read only by the members of the consult.",
            ),
            QCoreApplication.translate(
                "ChatView", "Open a consult to start a conversation with its members.",
            ),
        )

    # -- layout ----------------------------------------------------------------------------

    def _build(self) -> None:
        outer = self.layout()
        while outer.count():  # the placeholder's labels move to the "not ready" page
            outer.takeAt(0)
        outer.setContentsMargins(0, 0, 0, 0)
        outer.setSpacing(0)
        waiting = QWidget()
        waiting_column = QVBoxLayout(waiting)
        waiting_column.setContentsMargins(40, 36, 40, 36)
        waiting_column.setSpacing(14)
        for label in (self.heading, self.body, self.hint):
            waiting_column.addWidget(label)
        waiting_column.addStretch(1)

        # Left: search, conversations, new room.
        self.search = SearchBox()
        self.search.changedQuery.connect(self.run_search)
        self.rooms = RoomList()
        self.rooms.roomChosen.connect(self.open_room)
        self.results = SearchResults()
        self.results.hitChosen.connect(self._hit_chosen)
        self.left_stack = QStackedWidget()
        self.left_stack.addWidget(self.rooms)
        self.left_stack.addWidget(self.results)
        self.new_room_button = QPushButton()
        self.new_room_button.setObjectName("newConsultRoom")
        self.new_room_button.clicked.connect(self.new_room)
        self.rooms_heading = QLabel()
        self.rooms_heading.setObjectName("roomsHeading")
        left = QFrame()
        left.setObjectName("chatRooms")
        left_column = QVBoxLayout(left)
        left_column.setContentsMargins(12, 12, 12, 12)
        left_column.setSpacing(8)
        left_column.addWidget(self.search)
        left_column.addWidget(self.rooms_heading)
        left_column.addWidget(self.left_stack, 1)
        left_column.addWidget(self.new_room_button)
        self.presence_box = PresenceBox()
        self.presence_box.chosen.connect(self.set_presence)
        left_column.addWidget(self.presence_box)

        # Middle: the open conversation.
        self.room_title = QLabel()
        self.room_title.setObjectName("roomTitle")
        self.room_title.setProperty("role", "heading")
        self.room_title.setWordWrap(True)
        self.connection = QLabel()
        self.connection.setObjectName("chatConnection")
        self.connection.setProperty("role", "subtle")
        self.invite_button = QPushButton()
        self.invite_button.setObjectName("inviteMember")
        self.invite_button.clicked.connect(self.invite)
        self.join_button = QPushButton()
        self.join_button.setObjectName("joinRoom")
        self.join_button.clicked.connect(self.join)
        self.members_button = QPushButton()
        self.members_button.setObjectName("toggleMembers")
        self.members_button.setCheckable(True)
        self.members_button.setChecked(True)
        header = QHBoxLayout()
        header.setContentsMargins(16, 12, 16, 8)
        header.setSpacing(8)
        title_column = QVBoxLayout()
        title_column.setSpacing(0)
        title_column.addWidget(self.room_title)
        self.patient_bar = PatientLinkBar()  # the room's patient (PHI-tagged)
        self.patient_bar.edit.connect(self.edit_patient_link)
        self.patient_bar.clear.connect(self.clear_patient_link)
        title_column.addWidget(self.patient_bar)
        title_column.addWidget(self.connection)
        header.addLayout(title_column, 1)
        self.disappear_box = DisappearBox()
        self.disappear_box.chosen.connect(self.set_disappearing)
        for button in (self.disappear_box, self.join_button, self.invite_button,
                       self.members_button):
            header.addWidget(button, 0, Qt.AlignmentFlag.AlignTop)
        self.room_header = header  # other features add room actions (the call view's "Start")
        self.message = QLabel()
        self.message.setObjectName("chatMessage")
        self.message.setWordWrap(True)
        self.message.setProperty("role", "error")
        self.message.setContentsMargins(16, 0, 16, 4)
        self.message.hide()
        self.banner = DeviceWarningBanner()
        self.banner.verifyRequested.connect(self.verify_device)
        self.banner.acceptRequested.connect(self.accept_device)
        self.banner.blockRequested.connect(self.block_device)
        self.timeline = Timeline()
        self.timeline.reply.connect(self.start_reply)
        self.timeline.edit.connect(self.start_edit)
        self.timeline.recall.connect(self.recall)
        self.timeline.acknowledge.connect(self._acknowledge_current)
        self.timeline.older.connect(self.load_older)
        self.timeline.download.connect(self.download_attachment)
        self.timeline.open_file.connect(self.open_attachment)
        self.timeline.save_file.connect(self.save_attachment)
        self.timeline.cancel_transfer.connect(self.cancel_transfer)
        self._history_done = False  # the open room's oldest cached message is shown
        self.urgent = UrgentBanner()
        self.urgent.open.connect(lambda room_id, _event_id: self.open_room(room_id))
        self.urgent.acknowledge.connect(self.acknowledge)
        self.alerts = 0  # notifications this view passed on (the window's taskbar entry)
        self.composer = Composer()
        self.composer.send.connect(self.send)
        self.composer.attach_requested.connect(self.attach)
        self.composer.cancel_upload.connect(self.cancel_transfer)
        self.no_room = QLabel()
        self.no_room.setObjectName("noRoom")
        self.no_room.setWordWrap(True)
        self.no_room.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.no_room.setProperty("role", "subtle")
        self.conversation = QWidget()
        middle = QVBoxLayout(self.conversation)
        middle.setContentsMargins(0, 0, 0, 0)
        middle.setSpacing(0)
        middle.addLayout(header)
        middle.addWidget(self.message)
        middle.addWidget(self.banner)
        middle.addWidget(self.timeline, 1)
        middle.addWidget(self.composer)
        self.middle_stack = QStackedWidget()
        self.middle_stack.addWidget(self.no_room)
        self.middle_stack.addWidget(self.conversation)

        # Right: members and their devices.
        self.members = MemberPanel()
        self.members.verifyRequested.connect(self.verify_device)
        self.members.blockRequested.connect(self.block_device)
        self.members_button.toggled.connect(self.members.setVisible)

        self.split = QSplitter(Qt.Orientation.Horizontal)
        self.split.setObjectName("chatSplit")
        self.split.addWidget(left)
        self.split.addWidget(self.middle_stack)
        self.split.addWidget(self.members)
        self.split.setStretchFactor(1, 1)
        self.split.setSizes([280, 640, 300])
        self.split.setChildrenCollapsible(False)

        self.stack = QStackedWidget()
        self.stack.addWidget(waiting)
        self.stack.addWidget(self.split)
        outer.addWidget(self.urgent)
        outer.addWidget(self.stack)

        for keys, slot in (("Ctrl+F", self.focus_search), ("Ctrl+N", self.new_room),
                           ("Escape", self.clear_search)):
            shortcut = QShortcut(QKeySequence(keys), self)
            shortcut.setContext(Qt.ShortcutContext.WidgetWithChildrenShortcut)
            shortcut.activated.connect(slot)

    # -- wiring ----------------------------------------------------------------------------

    def configure(self, *, runner: TaskRunner | None = None, chat: ChatService | None = None,
                  verification: VerificationService | None = None,
                  app_state: AppState | None = None,
                  transfers: TransferEngine | None = None,
                  patients: RoomPatientService | None = None,
                  chat_files: ChatFiles | None = None) -> None:
        if chat_files is not None:
            self.chat_files = chat_files
            observe(chat_files.resuming, self._on_resuming, self)
            observe(chat_files.announce_failed,
                    lambda failed: self.show_message(user_message(failed[1])), self)
            observe(chat_files.interrupted, self._on_share_interrupted, self)
        if patients is not None:
            self.patients = patients
            observe(patients.changed, self._on_patient_link, self)
        if transfers is not None:
            self.transfers = transfers
            observe(transfers.progress, self._on_transfer_progress, self)
            self.composer.set_attach_available(True)
        if app_state is not None:
            # A verification request arriving while the window is locked waits for the
            # unlock: no dialog over the lock screen, no accepting without the password.
            self._app_state = app_state
            observe(app_state.events.locked, self._lock_changed, self)
        if runner is not None:
            self._runner = runner
        if chat is not None:
            self.chat = chat
            observe(chat.message, self._on_message, self)
            observe(chat.undecryptable, self._on_undecryptable, self)
            observe(chat.rooms_changed, self.refresh, self)
            observe(chat.device_warning, lambda _w: self._refresh_room_detail(), self)
            observe(chat.sent, self._on_sent, self)
            observe(chat.receipts_changed, self._on_receipts, self)
            observe(chat.notify, self._on_notify, self)
            observe(chat.presence_changed, self._on_presence, self)
            observe(chat.purged, self._on_purged, self)
            observe(chat.room_settings_changed, self._on_room_settings, self)
            self.presence_box.set_status(chat.presence)
            self._refresh_urgent()
            observe(chat.send_failed, self._on_send_failed, self)
            observe(chat.online_changed, self._on_online, self)
            self.stack.setCurrentIndex(1)
        if verification is not None:
            self.verification = verification
            observe(verification.requested, self._on_request, self)
            observe(verification.changed, self._on_verification, self)
        self.refresh()

    # -- rooms -----------------------------------------------------------------------------

    def room_title_for(self, room_id: str, state: str, members: tuple[str, ...] | list[str]
                       ) -> str:
        translate = QCoreApplication.translate
        if state == "invited":
            return translate("ChatView", "Invitation")
        assert self.chat is not None
        others = [display_name(self.chat.username(u), u) for u in members
                  if u != self.chat.user_id]
        if not others:
            return translate("ChatView", "New consult room (only you)")
        return ", ".join(sorted(others))

    def refresh(self) -> None:
        if self.chat is None:
            return
        entries = [RoomEntry(r.room_id, self.room_title_for(r.room_id, r.state, r.members),
                             0 if r.room_id == self.current_room and self._reading() else r.unread,
                             r.state == "invited", r.last_ts_ms)
                   for r in self.chat.rooms() if r.state in ("joined", "invited")]
        if self.current_room is not None and self._reading():
            current = next((r for r in self.chat.rooms() if r.room_id == self.current_room),
                           None)
            if current is not None and current.unread:
                self.chat.state.mark_read(self.current_room)  # no signal: we are refreshing
        self.rooms.set_rooms(entries, self.current_room)
        self.unreadChanged.emit(sum(e.unread + int(e.invited) for e in entries))
        if self.current_room is not None and self.current_room not in self.rooms.room_ids():
            self.current_room = None  # removed or left
        self.middle_stack.setCurrentWidget(self.conversation if self.current_room
                                           else self.no_room)
        self._refresh_room_detail()

    def open_room(self, room_id: str) -> None:
        if self.chat is None:
            return
        changed = room_id != self.current_room
        self.current_room = room_id
        self.middle_stack.setCurrentWidget(self.conversation)
        self.rooms.select(room_id)
        if changed:
            self.timeline.clear()
            self.composer.clear()
            self._load_timeline(room_id)
        if self._reading():
            self.chat.mark_read(room_id)  # rooms_changed -> refresh (the count goes)
        self._refresh_room_detail()

    def _load_timeline(self, room_id: str) -> None:
        assert self.chat is not None
        online = self.chat.online is not False
        self._history_done = False
        for message in self.chat.messages(room_id, limit=HISTORY_PAGE):
            self._show(message, online=online)
        for event in self.chat.undecrypted(room_id):
            self.timeline.add_undecryptable(event, self._name(event.sender))
        self._on_receipts(room_id)
        self.timeline.scroll_to_end()

    def _refresh_room_detail(self) -> None:
        self._refresh_patient()
        if self.chat is None or self.current_room is None:
            self.banner.set_devices([])
            self.members.set_members([])
            return
        chat, room_id = self.chat, self.current_room
        state = chat.state.room_state(room_id)
        members = chat.members(room_id)
        self.room_title.setText(self.room_title_for(room_id, state or "", members))
        invited = state == "invited"
        self.join_button.setVisible(invited)
        self.invite_button.setVisible(state == "joined")
        self.disappear_box.setVisible(state == "joined")
        self.disappear_box.set_seconds(chat.disappearing(room_id))
        entries = []
        invitees = chat.state.members(room_id, "invited")
        for user_id in [*members, *[u for u in invitees if u not in members]]:
            devices = tuple(DeviceEntry(r.user_id, r.device_id, r.ed25519, r.trust,
                                        chat.may_receive_keys(r))
                            for r in chat.devices(user_id))
            status = chat.presence if user_id == chat.user_id else chat.peer_presence(user_id)
            entries.append(MemberEntry(user_id, self._name(user_id),
                                       "joined" if user_id in members else "invited",
                                       user_id == chat.user_id, devices,
                                       presence_text(status)))
        entries.sort(key=lambda m: (not m.is_self, m.name))
        self.members.set_members(entries)
        flagged = chat.flagged_devices(room_id) if state == "joined" else []
        self.banner.set_devices([
            (DeviceEntry(r.user_id, r.device_id, r.ed25519, r.trust, False),
             self._name(r.user_id)) for r in flagged])
        translate = QCoreApplication.translate
        if invited:
            self.composer.set_blocked(translate("ChatView", "Join this conversation to read "
                                                "and write messages."))
        elif state != "joined":
            self.composer.set_blocked(translate("ChatView", "You are no longer a member of "
                                                "this conversation."))
        elif flagged:
            self.composer.set_blocked(translate(
                "ChatView", "Decide about the new device above before writing here: verify, "
                "accept or block it."))
        else:
            self.composer.set_blocked("")
        self._show_connection()

    def _reading(self) -> bool:
        return self.isVisible() and self.current_room is not None

    def showEvent(self, event: QShowEvent) -> None:
        super().showEvent(event)
        if self.chat is not None and self.current_room is not None:
            self.chat.mark_read(self.current_room)

    # -- live updates ----------------------------------------------------------------------

    def _on_message(self, message: ChatMessage) -> None:
        if self.chat is None or message.room_id != self.current_room:
            return
        # Adds it, or replaces what its entry showed (waiting for the key; edited, recalled).
        self._show(message, online=self.chat.online is not False)
        # Replies quoting it show its new text (or that it was recalled).
        for bubble in self.timeline.bubbles.values():
            if bubble.message is not None and bubble.message.reply_to == message.event_id \
                    and not bubble.message.recalled:
                bubble.set_quote(quote_text(self._name(message.sender), message))

    def _show(self, message: ChatMessage, *, online: bool) -> None:
        assert self.chat is not None
        quote = None
        if message.reply_to is not None:
            quoted = self.chat.message_by_id(message.reply_to)
            quote = quote_text(self._name(quoted.sender) if quoted else "", quoted)
        info = self.chat.attachment(message.event_id)
        bubble = self.timeline.add_message(
            message, self._name(message.sender), own=message.sender == self.chat.user_id,
            online=online, quote=quote,
            attachment=(info.name.reveal(), info.size) if info is not None else None)
        if info is not None and bubble.attachment is not None:
            self._attachment_state(info, bubble.attachment)

    # -- files -----------------------------------------------------------------------------

    def _attachment_state(self, info: AttachmentInfo, box: AttachmentBox) -> None:
        """What a (re)shown file box offers: running download, verified file, or Download."""
        if self.transfers is None or box.state != "available":
            return
        transfer_id = download_id(info.descriptor)
        if transfer_id in self._resumed and self.transfers.running(transfer_id):
            self._downloads[transfer_id] = info.event_id  # resumed at sign-in, still going
        if self._downloads.get(transfer_id) == info.event_id:
            box.start(transfer_id)
            return
        file_id = self._files.get(info.event_id)
        if file_id is None:
            result = self.transfers.result(transfer_id)
            file_id = result.file_id if result is not None else None
        if file_id is not None and file_id in self.transfers.files.ids():
            self._files[info.event_id] = file_id
            box.set_ready()

    def attach(self) -> None:
        """*Attach*: pick a file, then :meth:`attach_file`."""
        if self.transfers is None or self.current_room is None or self.composer.blocked:
            return
        path, _filter = QFileDialog.getOpenFileName(
            self, QCoreApplication.translate("ChatView", "Send a file"))
        if path:
            self.attach_file(path)

    def attach_file(self, path: str) -> str | None:
        """Encrypt and upload ``path`` (a progress row in the composer, with Cancel), then
        send it as an attachment message. Returns the upload's transfer id."""
        if self.chat is None or self.transfers is None or self.current_room is None \
                or self.composer.blocked:
            return None
        chat, engine, room_id = self.chat, self.transfers, self.current_room
        transfer_id = secrets.token_hex(16)
        self.composer.add_upload(transfer_id, Path(path).name)
        self.show_message("")

        files = self.chat_files

        async def run() -> str:
            if files is not None:  # finished and announced after a restart too
                return await files.send_file(room_id, path, transfer_id=transfer_id)
            descriptor = await engine.upload(room_id, path, transfer_id=transfer_id)
            return await chat.send_attachment(room_id, descriptor)

        def failed(text: str) -> None:
            self.composer.remove_upload(transfer_id)
            self.show_message(text)

        self._runner.run_task(run(), owner=self,
                              on_result=lambda _e: self.composer.remove_upload(transfer_id),
                              on_error=failed)
        return transfer_id

    def download_attachment(self, event_id: str) -> str | None:
        """Fetch, verify and store the file of message ``event_id`` (progress with Cancel in
        its box; a refusal shows the engine's words). Returns the transfer id."""
        if self.chat is None or self.transfers is None:
            return None
        info = self.chat.attachment(event_id)
        bubble = self.timeline.bubbles.get(event_id)
        if info is None:
            return None
        chat, engine = self.chat, self.transfers
        transfer_id = download_id(info.descriptor)
        self._downloads[transfer_id] = event_id
        if bubble is not None and bubble.attachment is not None:
            bubble.attachment.start(transfer_id)

        async def run() -> str:
            return await engine.download(info.descriptor.to_wire(),
                                         chat.attachment_sender(info), room_id=info.room_id)

        def done(file_id: str) -> None:
            self._downloads.pop(transfer_id, None)
            self._files[event_id] = file_id
            box = self._box(event_id)
            if box is not None:
                box.set_ready()

        def failed(text: str) -> None:
            self._downloads.pop(transfer_id, None)
            box = self._box(event_id)
            if box is not None:
                box.set_failed(text)

        self._runner.run_task(run(), owner=self, on_result=done, on_error=failed)
        return transfer_id

    def _box(self, event_id: str) -> AttachmentBox | None:
        bubble = self.timeline.bubbles.get(event_id)
        return bubble.attachment if bubble is not None else None

    def cancel_transfer(self, transfer_id: str) -> None:
        row = self.composer.uploads.get(transfer_id)
        if row is not None and row.ended:  # Dismiss: a resumed upload that did not finish
            self.composer.remove_upload(transfer_id)
            return
        if self.transfers is not None:
            self.transfers.cancel(transfer_id)

    def _on_resuming(self, transfers: tuple[ResumingTransfer, ...]) -> None:
        """Transfers of this device going on after a restart: shown like new ones (uploads
        in the composer's transfer panel, downloads in their file message's box)."""
        before = {p.transfer_id: p.fraction for p in self.transfers.transfers()} \
            if self.transfers is not None else {}
        for transfer in transfers:
            self._resumed.add(transfer.transfer_id)
            if transfer.direction == "upload":
                if transfer.transfer_id not in self.composer.uploads:
                    row = self.composer.add_upload(transfer.transfer_id, transfer.name.reveal())
                    row.set_waiting(before.get(transfer.transfer_id, 0.0))
                continue
            for event_id in list(self.timeline.bubbles):
                info = self.chat.attachment(event_id) if self.chat is not None else None
                box = self._box(event_id)
                if info is not None and box is not None \
                        and download_id(info.descriptor) == transfer.transfer_id:
                    self._downloads[transfer.transfer_id] = event_id
                    box.start(transfer.transfer_id).set_waiting(
                        before.get(transfer.transfer_id, 0.0))

    def _on_share_interrupted(self, action: Interrupted) -> None:
        """A study share that a restart interrupted was ended at sign-in: nothing was sent
        (its remaining uploads were cancelled). Said once, without patient data."""
        if action.kind == "study":
            self.show_message(self.tr(
                "Sharing a study was interrupted when SafeConsult stopped; it was not sent "
                "to the conversation. Share the study again."))

    def _on_transfer_progress(self, progress: TransferProgress) -> None:
        row = self.composer.uploads.get(progress.transfer_id)
        if row is None:
            box = self._box(self._downloads.get(progress.transfer_id, ""))
            row = box.row if box is not None else None
        if row is not None and row.transfer_id == progress.transfer_id:
            row.update_progress(progress)
        if progress.final and progress.transfer_id in self._resumed:
            self._resumed_ended(progress)

    def _resumed_ended(self, progress: TransferProgress) -> None:
        """A transfer resumed at sign-in ended (nobody awaits it in this view)."""
        self._resumed.discard(progress.transfer_id)
        if progress.direction == "upload":
            if progress.phase == phases.DONE:
                self.composer.remove_upload(progress.transfer_id)
            return  # failed or cancelled: its row keeps the words, with Dismiss
        event_id = self._downloads.pop(progress.transfer_id, "")
        box = self._box(event_id)
        result = self.transfers.result(progress.transfer_id) if self.transfers else None
        if progress.phase == phases.DONE and result is not None and result.file_id:
            if event_id:
                self._files[event_id] = result.file_id
            if box is not None:
                box.set_ready()
        elif box is not None:
            box.set_failed(progress_text(progress))

    def open_attachment(self, event_id: str) -> None:
        """Open a verified file inside the app (decrypted in memory, never to disk)."""
        file_id = self._files.get(event_id)
        if self.chat is None or self.transfers is None or file_id is None:
            return
        info = self.chat.attachment(event_id)
        if info is None:
            return
        mime = info.mime.reveal()
        data = self.transfers.files.read(file_id) if previewable(mime, info.size) else b""
        dialog = preview_dialog(self, info.name.reveal(), mime, data)
        dialog.show()
        self.preview = dialog  # tests

    def save_attachment(self, event_id: str) -> None:
        """*Save as...*: the user picks where the decrypted copy goes."""
        info = self.chat.attachment(event_id) if self.chat is not None else None
        if info is None or event_id not in self._files:
            return
        path, _filter = QFileDialog.getSaveFileName(
            self, QCoreApplication.translate("ChatView", "Save the file as"),
            info.name.reveal())
        if path:
            self.save_attachment_to(event_id, path)

    def save_attachment_to(self, event_id: str, path: str) -> None:
        file_id = self._files.get(event_id)
        info = self.chat.attachment(event_id) if self.chat is not None else None
        if self.chat is None or self.transfers is None or info is None or file_id is None:
            return
        translate = QCoreApplication.translate
        self._runner.run_task(
            self.chat.export_attachment(self.transfers.files, file_id, info, path),
            owner=self, on_result=lambda _r: self.show_message(
                translate("ChatView", "File saved. That copy is not encrypted: keep it where "
                          "patient data may be kept.")),
            on_error=self.show_message)

    def _on_undecryptable(self, event: UndecryptedEvent) -> None:
        if event.room_id == self.current_room:
            self.timeline.add_undecryptable(event, self._name(event.sender))

    def _on_sent(self, event_id: str) -> None:
        self.timeline.mark(event_id, SENT)
        if self.current_room is not None:
            self._on_receipts(self.current_room)

    def _on_receipts(self, room_id: str) -> None:
        """Sent / Delivered / Read on our own messages, from the other members' receipts."""
        if self.chat is None or room_id != self.current_room:
            return
        translate = QCoreApplication.translate
        for event_id, delivery in self.chat.delivery(
                room_id, limit=max(HISTORY_PAGE, len(self.timeline.bubbles))).items():
            detail = ""
            if delivery.others > 1:
                detail = fill(translate("Timeline", "Delivered to %1 of %2, read by %3"),
                              str(delivery.delivered), str(delivery.others), str(delivery.read))
            self.timeline.mark(event_id, delivery.state, detail=detail)

    def _on_send_failed(self, failed: SendFailed) -> None:
        self.timeline.mark(failed.event_id, FAILED)
        self.show_message(QCoreApplication.translate("SafeConsultError", failed.user_message))

    def _on_online(self, _online: bool) -> None:
        self._show_connection()
        online = self.chat is not None and self.chat.online is not False
        for bubble in self.timeline.bubbles.values():
            if bubble.own and bubble.kind == "message" and bubble.delivery == "queued":
                bubble.set_delivery("queued", online=online)

    def _show_connection(self) -> None:
        translate = QCoreApplication.translate
        if self.chat is None:
            return
        if self.chat.online is False:
            text = translate("ChatView", "Offline: messages you write are kept encrypted on "
                             "this device and sent when the connection returns.")
        else:
            text = translate("ChatView", "End-to-end encrypted")
        self.connection.setText(text)

    def show_message(self, text: str) -> None:
        self.message.setText(text)
        self.message.setVisible(bool(text))

    # -- actions ---------------------------------------------------------------------------

    def send(self, text: str) -> None:
        if self.chat is None or self.current_room is None or self.composer.blocked:
            return
        mode, target = self.composer.mode, self.composer.target
        urgent = self.composer.urgent.isChecked()
        self.composer.clear()
        self.show_message("")
        if mode == EDIT and target is not None:
            work = self.chat.edit_message(self.current_room, target, text)
        else:
            work = self.chat.send_text(self.current_room, text,
                                       reply_to=target if mode == REPLY else None,
                                       urgent=urgent)
        self._runner.run_task(work, owner=self, on_error=self.show_message)

    # -- urgent messages and status ---------------------------------------------------------

    def _on_notify(self, notification: Notification) -> None:
        """A message of another member wants attention (the service already applied do not
        disturb): flash the window's taskbar entry; urgent ones also hold the banner."""
        self.alerts += 1
        window = self.window()
        if window is not None and window.isVisible():
            QApplication.alert(window, 0)
        if notification.urgent:
            self._refresh_urgent()

    def _refresh_urgent(self) -> None:
        if self.chat is None:
            return
        waiting = self.chat.unacknowledged()
        if not waiting:
            self.urgent.clear()
            return
        first = waiting[0]
        self.urgent.show_urgent(first.room_id, first.event_id, self._name(first.sender),
                                " ".join(first.body.reveal().split()), len(waiting))

    def _acknowledge_current(self, event_id: str) -> None:
        if self.current_room is not None:
            self.acknowledge(self.current_room, event_id)

    def acknowledge(self, room_id: str, event_id: str) -> None:
        if self.chat is None:
            return
        self._runner.run_task(self.chat.acknowledge(room_id, event_id), owner=self,
                              on_result=lambda _r: self._refresh_urgent(),
                              on_error=self.show_message)

    def set_disappearing(self, seconds: int) -> None:
        if self.chat is None or self.current_room is None:
            return
        self._runner.run_task(self.chat.set_disappearing(self.current_room, seconds),
                              owner=self, on_error=self.show_message)

    def _on_room_settings(self, room_id: str) -> None:
        if self.chat is not None and room_id == self.current_room:
            self.disappear_box.set_seconds(self.chat.disappearing(room_id))

    def _on_purged(self, rooms: set[str]) -> None:
        """Retention or disappearing messages removed messages: show what is left."""
        if self.chat is not None and self.current_room in rooms:
            self.timeline.clear()
            self._load_timeline(self.current_room)
        self._refresh_urgent()

    def set_presence(self, status: str) -> None:
        if self.chat is None:
            return
        self._runner.run_task(self.chat.set_presence(status), owner=self,
                              on_error=self.show_message)

    def _on_presence(self, _user_id: str) -> None:
        if self.chat is not None:
            self.presence_box.set_status(self.chat.presence)
        self._refresh_room_detail()

    def load_older(self) -> int:
        """Scrolled to the top: show the page of cached messages before the oldest shown
        (the cache holds history beyond the first page). Returns how many were added."""
        oldest = self.timeline.oldest_ts()
        if self.chat is None or self.current_room is None or oldest is None \
                or self._history_done:
            return 0
        older = self.chat.messages(self.current_room, limit=HISTORY_PAGE,
                                   before_ts_ms=oldest)
        if len(older) < HISTORY_PAGE:
            self._history_done = True
        if older:
            self.timeline.keep_position()
            online = self.chat.online is not False
            for message in older:
                self._show(message, online=online)
            self._on_receipts(self.current_room)
        return len(older)

    def start_reply(self, event_id: str) -> None:
        if self.chat is None or self.composer.blocked:
            return
        quoted = self.chat.message_by_id(event_id)
        if quoted is not None:
            self.composer.start_reply(event_id, quote_text(self._name(quoted.sender), quoted))

    def start_edit(self, event_id: str) -> None:
        if self.chat is None or self.composer.blocked:
            return
        message = self.chat.message_by_id(event_id)
        if message is not None and message.sender == self.chat.user_id \
                and not message.recalled:
            self.composer.start_edit(event_id, message.body.reveal())

    def recall(self, event_id: str, *, confirm: bool = True) -> None:
        """Delete our message ``event_id`` for everyone (within the policy's window)."""
        if self.chat is None or self.current_room is None:
            return
        translate = QCoreApplication.translate
        if confirm and not self._confirmed(
                translate("ChatView", "Recall this message?"),
                translate("ChatView", "It will be deleted for everyone in this conversation, "
                          "on every device. Recall it?")):
            return
        self._run(self.chat.recall_message(self.current_room, event_id))

    def _confirmed(self, title: str, question: str) -> bool:
        """Ask before something every member sees and that cannot be taken back."""
        return QMessageBox.question(self, title, question) == QMessageBox.StandardButton.Yes

    def _run(self, work, on_result=None) -> None:
        """Run a room action; its failure shows in the message line (cleared first)."""
        self.show_message("")
        self._runner.run_task(work, owner=self, on_result=on_result,
                              on_error=self.show_message)

    # -- the room's patient ----------------------------------------------------------------

    def _refresh_patient(self) -> None:
        room_id, patients = self.current_room, self.patients
        if patients is None or room_id is None:
            self.patient_bar.set_link(None, may_edit=False)
            return
        self.patient_bar.set_link(patients.link(room_id), may_edit=patients.may_edit(room_id))

    def _on_patient_link(self, room_id: str) -> None:
        if room_id == self.current_room:
            self._refresh_patient()

    def edit_patient_link(self) -> None:
        if self.patients is None or self.current_room is None:
            return
        dialog = PatientLinkDialog(self.patients.link(self.current_room), self)
        try:
            if dialog.exec() == PatientLinkDialog.DialogCode.Accepted:
                self.set_patient_link(*dialog.values())
        finally:
            dialog.deleteLater()

    def set_patient_link(self, name: str, mrn: str) -> None:
        if self.patients is None or self.current_room is None:
            return
        self._run(self.patients.set_link(self.current_room, name, mrn))

    def clear_patient_link(self, *, confirm: bool = True) -> None:
        if self.patients is None or self.current_room is None:
            return
        translate = QCoreApplication.translate
        if confirm and not self._confirmed(
                translate("ChatView", "Unlink the patient?"),
                translate("ChatView", "The room will no longer show this patient, for every "
                          "member. Unlink?")):
            return
        self._run(self.patients.clear_link(self.current_room))

    def new_room(self) -> None:
        if self.chat is None:
            return
        translate = QCoreApplication.translate
        username, ok = QInputDialog.getText(
            self, translate("ChatView", "New consult room"),
            translate("ChatView", "Invite a colleague by user name (you can invite more "
                      "later):"), QLineEdit.EchoMode.Normal, "")
        if ok:
            self.create_room(username.strip())

    def create_room(self, invite: str = "") -> None:
        assert self.chat is not None
        chat = self.chat

        async def run() -> str:
            room_id = await chat.create_room()
            if invite:
                await chat.invite(room_id, invite)
            return room_id

        self._runner.run_task(run(), owner=self, on_result=self.open_room,
                              on_error=self.show_message)

    def invite(self) -> None:
        if self.chat is None or self.current_room is None:
            return
        translate = QCoreApplication.translate
        username, ok = QInputDialog.getText(
            self, translate("ChatView", "Invite to this conversation"),
            translate("ChatView", "User name of the colleague to invite:"),
            QLineEdit.EchoMode.Normal, "")
        if ok and username.strip():
            self.invite_user(username.strip())

    def invite_user(self, username: str) -> None:
        assert self.chat is not None and self.current_room is not None
        self._run(self.chat.invite(self.current_room, username))

    def join(self) -> None:
        if self.chat is None or self.current_room is None:
            return
        room_id = self.current_room
        chat = self.chat

        async def run() -> str:
            await chat.join(room_id)
            await chat.sync_once()  # the history since the invitation, now readable
            return room_id

        self._runner.run_task(run(), owner=self, on_result=self._joined,
                              on_error=self.show_message)

    def _joined(self, room_id: str) -> None:
        if room_id == self.current_room:
            self.timeline.clear()
            self._load_timeline(room_id)
        self.refresh()

    def accept_device(self, device: DeviceEntry) -> None:
        if self.verification is None:
            return
        try:
            self.verification.accept_device(device.user_id, device.device_id, device.ed25519)
        except Exception as exc:  # keys changed meanwhile: say so, keep the warning
            from app.ui.asyncbridge import user_message

            self.show_message(user_message(exc))
        self._refresh_room_detail()

    def block_device(self, device: DeviceEntry, *, confirm: bool = True) -> None:
        if self.verification is None:
            return
        translate = QCoreApplication.translate
        if confirm:
            answer = QMessageBox.question(
                self, translate("ChatView", "Block this device?"),
                fill(translate("ChatView", "%1's device %2 will receive no messages from you, "
                               "and you will not read its messages. Block it?"),
                     self._name(device.user_id), device.device_id))
            if answer != QMessageBox.StandardButton.Yes:
                return
        self.verification.block_device(device.user_id, device.device_id)
        self._refresh_room_detail()

    def verify_device(self, device: DeviceEntry) -> None:
        if self.verification is None:
            return
        self._run(self.verification.start(device.user_id, device.device_id),
                  on_result=self.show_verification)

    def _on_request(self, status: VerificationStatus) -> None:
        if self._app_state is not None and self._app_state.locked:
            self._deferred.append(status)
            return
        self.show_verification(status)

    def _lock_changed(self, locked: bool) -> None:
        if locked or self.verification is None:
            return
        deferred, self._deferred = self._deferred, []
        for status in deferred:
            current = self.verification.status(status.transaction_id)
            if not current.finished:  # it may have been withdrawn or timed out meanwhile
                self.show_verification(current)

    def show_verification(self, status: VerificationStatus) -> VerificationDialog:
        assert self.verification is not None
        dialog = self.dialogs.get(status.transaction_id)
        if dialog is None:
            for txn, old in list(self.dialogs.items()):
                if old.status.finished and not old.isVisible():
                    old.deleteLater()
                    del self.dialogs[txn]
            dialog = VerificationDialog(self.verification, self._runner, status, self)
            self.dialogs[status.transaction_id] = dialog
        dialog.show()
        dialog.raise_()
        dialog.activateWindow()
        return dialog

    def _on_verification(self, status: VerificationStatus) -> None:
        if status.finished:
            self._refresh_room_detail()  # trust changed (or not): members, banner, composer

    # -- search ----------------------------------------------------------------------------

    def focus_search(self) -> None:
        self.search.setFocus()
        self.search.selectAll()

    def clear_search(self) -> None:
        if self.search.text():
            self.search.clear()
            self.search.search_now()

    def run_search(self, keyword: str) -> None:
        if self.chat is None or not keyword:
            self.left_stack.setCurrentWidget(self.rooms)
            return
        titles = {r.room_id: self.room_title_for(r.room_id, r.state, r.members)
                  for r in self.chat.rooms()}
        hits = [SearchHit(m.room_id, m.event_id, titles.get(m.room_id, ""),
                          self._name(m.sender), time_text(m.ts_ms), m.body.reveal())
                for m in self.chat.search(keyword)]
        self.results.set_hits(keyword, hits)
        self.left_stack.setCurrentWidget(self.results)

    def _hit_chosen(self, hit: SearchHit) -> None:
        self.open_room(hit.room_id)
        bubble = self.timeline.bubbles.get(hit.event_id)
        if bubble is not None:
            self.timeline.ensureWidgetVisible(bubble)

    # -- texts -----------------------------------------------------------------------------

    def _name(self, user_id: str) -> str:
        assert self.chat is not None
        return display_name(self.chat.username(user_id), user_id)

    def retranslate(self) -> None:
        super().retranslate()
        if not hasattr(self, "new_room_button"):
            return  # PlaceholderView.__init__ calls this before _build
        translate = QCoreApplication.translate
        self.rooms_heading.setText(translate("ChatView", "Conversations"))
        self.new_room_button.setText(translate("ChatView", "New consult room"))
        self.new_room_button.setToolTip(translate("ChatView", "Start a conversation (Ctrl+N)"))
        self.invite_button.setText(translate("ChatView", "Invite…"))
        self.join_button.setText(translate("ChatView", "Join"))
        self.members_button.setText(translate("ChatView", "Members"))
        self.no_room.setText(translate("ChatView", "Choose a conversation on the left, or "
                                       "start a new consult room."))
        self.rooms.setAccessibleName(translate("ChatView", "Conversations"))
        for widget in (self.composer, self.members, self.banner, self.search, self.urgent,
                       self.presence_box, self.disappear_box):
            widget.retranslate()
        if self.chat is not None:
            self.refresh()

"""A room's messages: who, when, what, and -- for our own -- whether the relay has them.

Messages that cannot be read yet are shown as such (waiting for the sender's key, or refused
with the reason) and are replaced in place when they decrypt. The whole timeline is PHI: the
lock hides it and screen-share redaction paints over it. Message texts are set as plain
text (a message with "<b>" is shown as typed, never as markup).
"""

from __future__ import annotations

from PySide6.QtCore import QCoreApplication, Qt, QTimer, Signal
from PySide6.QtGui import QAction
from PySide6.QtWidgets import (
    QFrame,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QScrollArea,
    QVBoxLayout,
    QWidget,
)

from app.core.chat import ChatMessage, EventState, UndecryptedEvent
from app.ui.chat.texts import time_text
from app.ui.chat.transfers import AttachmentBox
from app.ui.i18n import fill
from app.ui.phi import mark_phi

SENT, QUEUED, SENDING, FAILED = "sent", "queued", "sending", "failed"
DELIVERED, READ = "delivered", "read"  # every other member's device has it / read it
QUOTE_CHARS = 120  # of a replied-to message, on one line


def quote_text(sender_name: str, message: ChatMessage | None) -> str:
    """The line above a reply that shows what it answers."""
    translate = QCoreApplication.translate
    if message is None:
        return translate("Timeline", "In reply to a message not on this device")
    if message.recalled:
        text = translate("Timeline", "Message recalled")
    else:
        text = " ".join(message.body.reveal().split())
        if len(text) > QUOTE_CHARS:
            text = text[:QUOTE_CHARS - 1] + "…"
    return fill(translate("Timeline", "In reply to %1: %2"), sender_name, text)


class MessageBubble(QFrame):
    """One entry of the timeline. ``kind`` is "message" or "undecryptable"."""

    def __init__(self, event_id: str, *, own: bool) -> None:
        super().__init__()
        self.event_id = event_id
        self.own = own
        self.kind = ""  # "message" once shown; "undecryptable" while it cannot be
        self.delivery = ""
        self.message: ChatMessage | None = None
        self.attachment: AttachmentBox | None = None  # a file message's file
        self.quote = QLabel()
        self.quote.setObjectName("bubbleQuote")
        self.quote.setProperty("role", "subtle")
        self.quote.setTextFormat(Qt.TextFormat.PlainText)
        self.quote.setWordWrap(True)
        self.quote.hide()
        # Right-click (or the context-menu key): reply; edit and recall our own messages.
        self.setContextMenuPolicy(Qt.ContextMenuPolicy.ActionsContextMenu)
        self.reply_action = QAction(self)
        self.edit_action = QAction(self)
        self.recall_action = QAction(self)
        self.addActions([self.reply_action, self.edit_action, self.recall_action])
        self._set_actions()
        self.setObjectName("ownBubble" if own else "bubble")
        self.sender = QLabel()
        self.sender.setObjectName("bubbleSender")
        self.time = QLabel()
        self.time.setProperty("role", "subtle")
        self.body = QLabel()
        self.body.setObjectName("bubbleBody")
        self.body.setWordWrap(True)
        self.body.setTextFormat(Qt.TextFormat.PlainText)
        # Selectable for reading and quoting within the app; copying out is the user's act.
        self.body.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse
                                          | Qt.TextInteractionFlag.TextSelectableByKeyboard)
        self.state = QLabel()
        self.state.setObjectName("bubbleState")
        self.state.setProperty("role", "subtle")
        self.urgent = QLabel()
        self.urgent.setObjectName("bubbleUrgent")
        self.urgent.hide()
        self.ack_button = QPushButton()
        self.ack_button.setObjectName("bubbleAcknowledge")
        self.ack_button.hide()
        head = QHBoxLayout()
        head.setSpacing(8)
        head.addWidget(self.sender)
        head.addWidget(self.time)
        head.addWidget(self.urgent)
        head.addStretch(1)
        head.addWidget(self.ack_button)
        head.addWidget(self.state)
        column = QVBoxLayout(self)
        column.setContentsMargins(12, 8, 12, 8)
        column.setSpacing(2)
        column.addLayout(head)
        column.addWidget(self.quote)
        column.addWidget(self.body)
        self._column = column

    def set_attachment(self, name: str, size: int) -> AttachmentBox:
        """Show this message as a file (``name`` is PHI: the timeline is tagged)."""
        if self.attachment is None:
            self.attachment = AttachmentBox()
            self._column.addWidget(self.attachment)
        self.attachment.show_file(name, size)
        self.body.hide()
        return self.attachment

    def _set_actions(self) -> None:
        translate = QCoreApplication.translate
        self.reply_action.setText(translate("Timeline", "Reply"))
        self.edit_action.setText(translate("Timeline", "Edit"))
        self.recall_action.setText(translate("Timeline", "Recall (delete for everyone)"))
        shown = self.kind == "message" and self.message is not None \
            and not self.message.recalled
        self.reply_action.setVisible(shown)
        self.edit_action.setVisible(shown and self.own)
        self.recall_action.setVisible(shown and self.own)

    def show_message(self, message: ChatMessage, sender_name: str,
                     quote: str | None = None) -> None:
        translate = QCoreApplication.translate
        self.kind = "message"
        self.message = message
        self.sender.setText(sender_name)
        when = time_text(message.ts_ms)
        if message.edited and not message.recalled:
            when = fill(translate("Timeline", "%1 · edited"), when)
        self.time.setText(when)
        if message.recalled:
            self.body.setText(translate("Timeline", "Message recalled"))
            self.body.setProperty("state", "recalled")
            self.body.show()
            if self.attachment is not None:
                self.attachment.hide()
        else:
            self.body.setText(message.body.reveal())
            self.body.setProperty("state", "")
        self._restyle(self.body)
        self.set_quote(quote if message.reply_to is not None and not message.recalled else None)
        urgent = message.urgent and not message.recalled
        self.urgent.setVisible(urgent)
        if urgent:
            self.urgent.setText(translate("Timeline", "Urgent · acknowledged") if
                                message.acknowledged else translate("Timeline", "Urgent"))
            self.urgent.setStyleSheet("" if message.acknowledged
                                      else "color: #b3261e; font-weight: 600;")
        self.ack_button.setText(translate("Timeline", "Acknowledge"))
        self.ack_button.setVisible(urgent and not self.own and not message.acknowledged)
        if self.own:
            self.set_delivery(QUEUED if message.pending else SENT)
        else:
            self.state.clear()
        self._set_actions()

    def set_quote(self, quote: str | None) -> None:
        self.quote.setText(quote or "")
        self.quote.setVisible(quote is not None)

    def show_undecryptable(self, event: UndecryptedEvent, sender_name: str) -> None:
        translate = QCoreApplication.translate
        self.kind = "undecryptable"
        self.sender.setText(sender_name)
        self.time.setText(time_text(event.origin_ms))
        if event.state is EventState.WAITING_FOR_KEY:
            text = fill(translate("Timeline", "Waiting for the key from %1's device. This "
                                  "message will appear when it arrives."), sender_name)
            self.body.setProperty("state", "")
        else:
            reason = translate("SafeConsultError", event.user_message) if event.user_message \
                else translate("Timeline", "It could not be decrypted.")
            text = fill(translate("Timeline", "This message cannot be shown: %1"), reason)
            self.body.setProperty("state", "bad")
        self.body.setText(text)
        self._restyle(self.body)
        self.state.clear()
        self._set_actions()

    def set_delivery(self, delivery: str, *, online: bool = True, detail: str = "") -> None:
        translate = QCoreApplication.translate
        self.delivery = delivery
        texts = {
            SENT: translate("Timeline", "Sent"),
            DELIVERED: translate("Timeline", "Delivered"),
            READ: translate("Timeline", "Read"),
            SENDING: translate("Timeline", "Sending…"),
            QUEUED: translate("Timeline", "Sending…") if online
            else translate("Timeline", "Queued: sends when you are back online"),
            FAILED: translate("Timeline", "Not sent"),
        }
        self.state.setText(texts[delivery])
        self.state.setToolTip(detail)
        self.state.setProperty("state", "bad" if delivery == FAILED else "")
        self._restyle(self.state)

    @staticmethod
    def _restyle(widget: QWidget) -> None:
        widget.style().unpolish(widget)
        widget.style().polish(widget)


class Timeline(QScrollArea):
    """The messages of one room, oldest first, kept at the bottom as new ones arrive.

    Emits ``reply``/``edit``/``recall`` with an event id when the user picks that action on
    a message."""

    reply = Signal(str)
    edit = Signal(str)
    recall = Signal(str)
    acknowledge = Signal(str)
    download = Signal(str)  # event id of a file message: fetch and verify its file
    open_file = Signal(str)
    save_file = Signal(str)
    cancel_transfer = Signal(str)  # transfer id
    older = Signal()  # scrolled to the top: the view may load earlier messages

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("timeline")
        mark_phi(self)
        self.setWidgetResizable(True)
        self.setFrameShape(QFrame.Shape.NoFrame)
        self.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self._content = QWidget()
        self._content.setObjectName("timelineContent")
        self._column = QVBoxLayout(self._content)
        self._column.setContentsMargins(16, 12, 16, 12)
        self._column.setSpacing(8)
        self._column.addStretch(1)
        self.setWidget(self._content)
        self.bubbles: dict[str, MessageBubble] = {}
        self.verticalScrollBar().valueChanged.connect(self._scrolled)
        self._keep_from_bottom: int | None = None
        self._follow = False  # keep at the end while the content grows (until the user scrolls)
        self.verticalScrollBar().rangeChanged.connect(self._range_changed)
        self.verticalScrollBar().actionTriggered.connect(self._user_scrolled)
        self.setStyleSheet(
            "QWidget#timelineContent { background: palette(base); }"
            "QFrame#bubble { background: palette(alternate-base); border-radius: 8px; }"
            "QFrame#ownBubble { background: palette(window); border: 1px solid palette(mid);"
            " border-radius: 8px; }"
            "QLabel#bubbleSender { font-weight: 600; }"
            "QLabel#bubbleBody[state=\"bad\"] { font-style: italic; }"
            "QLabel#bubbleBody[state=\"recalled\"] { font-style: italic; color: palette(mid); }"
            "QLabel#bubbleQuote { border-left: 3px solid palette(mid); padding-left: 6px; }"
        )

    def clear(self) -> None:
        self._keep_from_bottom = None
        for bubble in self.bubbles.values():
            self._column.removeWidget(bubble)
            bubble.deleteLater()
        self.bubbles.clear()

    def add_message(self, message: ChatMessage, sender_name: str, *, own: bool,
                    online: bool = True, quote: str | None = None,
                    attachment: tuple[str, int] | None = None) -> MessageBubble:
        """Add ``message``, or replace what its entry showed (it decrypted, was edited or
        recalled). ``quote``: the line showing the message it replies to; ``attachment``:
        (name, size) when the message is a file."""
        bubble = self._bubble(message.event_id, message.ts_ms, own=own)
        bubble.show_message(message, sender_name, quote)
        if attachment is not None and not message.recalled:
            new = bubble.attachment is None
            box = bubble.set_attachment(*attachment)
            if new:
                event_id = message.event_id
                box.download.connect(lambda: self.download.emit(event_id))
                box.open.connect(lambda: self.open_file.emit(event_id))
                box.save.connect(lambda: self.save_file.emit(event_id))
                box.cancel.connect(self.cancel_transfer)
        if bubble.own and message.pending:
            bubble.set_delivery(QUEUED, online=online)
        return bubble

    def add_undecryptable(self, event: UndecryptedEvent, sender_name: str) -> MessageBubble:
        bubble = self._bubble(event.event_id, event.origin_ms, own=False)
        if bubble.kind != "message":  # a message shown stays shown
            bubble.show_undecryptable(event, sender_name)
        return bubble

    def mark(self, event_id: str, delivery: str, *, online: bool = True,
             detail: str = "") -> None:
        bubble = self.bubbles.get(event_id)
        if bubble is not None and bubble.own and bubble.kind == "message":
            if delivery in (DELIVERED, READ) and bubble.delivery not in (SENT, DELIVERED, READ):
                return  # receipts never override "queued" or "not sent"
            bubble.set_delivery(delivery, online=online, detail=detail)

    def texts(self) -> list[str]:
        """What the timeline shows, in order (tests and accessibility)."""
        return [self.bubbles[e].body.text() for e in self._order()]

    def _order(self) -> list[str]:
        ids = []
        for i in range(self._column.count()):
            widget = self._column.itemAt(i).widget()
            if isinstance(widget, MessageBubble):
                ids.append(widget.event_id)
        return ids

    def _bubble(self, event_id: str, ts_ms: int, *, own: bool) -> MessageBubble:
        existing = self.bubbles.get(event_id)
        if existing is not None:
            return existing  # an undecryptable entry that now decrypts, or a re-sync
        bubble = MessageBubble(event_id, own=own)
        bubble.setProperty("ts_ms", ts_ms)
        bubble.reply_action.triggered.connect(lambda: self.reply.emit(event_id))
        bubble.edit_action.triggered.connect(lambda: self.edit.emit(event_id))
        bubble.recall_action.triggered.connect(lambda: self.recall.emit(event_id))
        bubble.ack_button.clicked.connect(lambda: self.acknowledge.emit(event_id))
        # Ordered by time: a late-arriving older message goes where it belongs.
        index = self._column.count()
        while index > 1:
            previous = self._column.itemAt(index - 1).widget()
            if previous is None or int(previous.property("ts_ms")) <= ts_ms:
                break
            index -= 1
        self._column.insertWidget(index, bubble)
        self.bubbles[event_id] = bubble
        at_bottom = self.verticalScrollBar().value() >= self.verticalScrollBar().maximum() - 40
        if (at_bottom or own) and self._keep_from_bottom is None:
            QTimer.singleShot(0, self.scroll_to_end)
        return bubble

    def _scrolled(self, value: int) -> None:
        if value == 0 and self.bubbles and self.verticalScrollBar().maximum() > 0:
            self.older.emit()

    def oldest_ts(self) -> int | None:
        order = self._order()
        return int(self.bubbles[order[0]].property("ts_ms")) if order else None

    def keep_position(self) -> None:
        """Call before adding older messages above: what the user looks at stays put."""
        bar = self.verticalScrollBar()
        self._keep_from_bottom = bar.maximum() - bar.value()

    def _range_changed(self, _minimum: int, maximum: int) -> None:
        if self._keep_from_bottom is not None:
            self.verticalScrollBar().setValue(maximum - self._keep_from_bottom)
            self._keep_from_bottom = None
        elif self._follow:
            self.verticalScrollBar().setValue(maximum)

    def _user_scrolled(self, _action: int) -> None:
        self._follow = False

    def scroll_to_end(self) -> None:
        self._follow = True
        bar = self.verticalScrollBar()
        bar.setValue(bar.maximum())

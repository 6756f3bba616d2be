"""The signed-in workspace: left navigation and the feature views beside it.

Which areas are listed depends on the user's role (Admin only for IT administrators and
auditors). The role comes from :class:`AppState`; the list follows it live.
"""

from __future__ import annotations

from dataclasses import dataclass

from PySide6.QtCore import QCoreApplication, QEvent, Qt
from PySide6.QtGui import QKeySequence, QShortcut
from PySide6.QtWidgets import (
    QFrame,
    QHBoxLayout,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QStackedWidget,
    QVBoxLayout,
    QWidget,
)

from app.services.app_state import AppState, SignedInUser, is_admin
from app.ui.i18n import fill
from app.ui.observe import observe
from app.ui.views.admin import AdminView
from app.ui.views.chat import ChatView
from app.ui.views.consults import ConsultsView
from app.ui.views.images import ImagesView
from app.ui.views.placeholder import PlaceholderView

_KEY_ROLE = Qt.ItemDataRole.UserRole


@dataclass(frozen=True)
class Area:
    key: str
    view_type: type[PlaceholderView]
    admin_only: bool = False


AREAS = (
    Area("consults", ConsultsView),
    Area("chat", ChatView),
    Area("images", ImagesView),
    Area("admin", AdminView, admin_only=True),
)


def role_text(role: str) -> str:
    """The role's name for people; an unknown role (a newer server) shows as sent."""
    translate = QCoreApplication.translate
    names = {
        "physician": translate("Workspace", "Physician"),
        "nurse": translate("Workspace", "Nurse"),
        "consultant": translate("Workspace", "Consultant"),
        "it_admin": translate("Workspace", "IT administrator"),
        "auditor": translate("Workspace", "Auditor"),
    }
    return names.get(role, role)


class Workspace(QWidget):
    def __init__(self, state: AppState, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._state = state
        self.navigation = QListWidget()
        self.navigation.setObjectName("navigation")
        self.navigation.setFixedWidth(230)
        self.navigation.setFrameShape(QListWidget.Shape.NoFrame)
        self.user_label = QLabel()
        self.user_label.setObjectName("signedInUser")
        self.user_label.setWordWrap(True)
        self.user_label.setProperty("role", "subtle")
        self.stack = QStackedWidget()
        self.views: dict[str, PlaceholderView] = {}
        self._badges: dict[str, int] = {}  # area -> count shown beside its name (unread)
        self._items: dict[str, QListWidgetItem] = {}
        for area in AREAS:
            view = area.view_type()
            view.setObjectName(f"view_{area.key}")
            self.views[area.key] = view
            self.stack.addWidget(view)
            item = QListWidgetItem()
            item.setData(_KEY_ROLE, area.key)
            self.navigation.addItem(item)
            self._items[area.key] = item
        self.navigation.currentItemChanged.connect(self._item_changed)

        self.side_panel = QFrame()
        self.side_panel.setObjectName("sidePanel")
        self.side_panel.setFixedWidth(self.navigation.width())
        side = QVBoxLayout(self.side_panel)
        side.setContentsMargins(0, 0, 0, 0)
        side.setSpacing(0)
        side.addWidget(self.navigation, 1)
        side.addWidget(self.user_label)
        self.user_label.setContentsMargins(16, 8, 16, 12)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(0)
        layout.addWidget(self.side_panel)
        # Banners that concern the whole workspace (e.g. emergency access) sit above the
        # views: add_banner().
        self.banner_area = QVBoxLayout()
        self.banner_area.setContentsMargins(0, 0, 0, 0)
        self.banner_area.setSpacing(0)
        self.banner_area.addWidget(self.stack, 1)
        layout.addLayout(self.banner_area, 1)

        # Ctrl+1..4 jump to an area; the list itself takes arrow keys.
        for number, area in enumerate(AREAS, start=1):
            shortcut = QShortcut(QKeySequence(f"Ctrl+{number}"), self)
            shortcut.activated.connect(lambda key=area.key: self.show_area(key))

        observe(state.events.user, self._user_changed, self)
        self._user_changed(state.user)
        self.retranslate()
        self.show_area("consults")

    def add_banner(self, banner: QWidget) -> None:
        """Show ``banner`` above the views, in every area, for this sign-in."""
        self.banner_area.insertWidget(self.banner_area.count() - 1, banner)

    def set_badge(self, key: str, count: int) -> None:
        """Show ``count`` beside the area's name (e.g. unread messages); 0 removes it."""
        self._badges[key] = max(0, count)
        self._name_area(key)

    def _name_area(self, key: str) -> None:
        area = next(a for a in AREAS if a.key == key)
        count = self._badges.get(key, 0)
        title = area.view_type.title()
        self._items[key].setText(fill("%1 (%2)", title, str(count)) if count else title)

    def visible_areas(self) -> list[str]:
        return [key for key, item in self._items.items() if not item.isHidden()]

    def current_area(self) -> str:
        return str(self.navigation.currentItem().data(_KEY_ROLE))

    def show_area(self, key: str) -> None:
        item = self._items[key]
        if not item.isHidden():
            self.navigation.setCurrentItem(item)

    def _item_changed(self, item: QListWidgetItem | None, _previous: object) -> None:
        if item is not None:
            self.stack.setCurrentWidget(self.views[str(item.data(_KEY_ROLE))])

    def _user_changed(self, user: SignedInUser | None) -> None:
        admin = is_admin(user)
        for area in AREAS:
            self._items[area.key].setHidden(area.admin_only and not admin)
        current = self.navigation.currentItem()
        if current is None or current.isHidden():
            self.show_area("consults")
        self._show_user(user)

    def _show_user(self, user: SignedInUser | None) -> None:
        if user is None:
            self.user_label.clear()
            return
        self.user_label.setText(fill(self.tr("Signed in as %1 (%2)"),
                                     user.username, role_text(user.role)))

    def retranslate(self) -> None:
        for area in AREAS:
            self._name_area(area.key)
        self.navigation.setAccessibleName(self.tr("Areas"))
        self._show_user(self._state.user)

    def changeEvent(self, event: QEvent) -> None:
        if event.type() == QEvent.Type.LanguageChange:
            self.retranslate()
        super().changeEvent(event)

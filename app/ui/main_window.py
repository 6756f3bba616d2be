"""The main window: the frame every feature plugs into.

Top to bottom: the shared-device banner (kiosk policy only), the notification area (errors
from background work), then either the sign-in screen or the workspace, whichever
``AppState.user`` calls for, and the status bar (connection, device, lock countdown).
Menus switch language and theme at runtime and save the choice to the user's settings.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import replace
from typing import TYPE_CHECKING

from PySide6.QtCore import QEvent
from PySide6.QtGui import QAction, QActionGroup, QCloseEvent, QKeySequence, QShowEvent
from PySide6.QtWidgets import QMainWindow, QMenu, QStackedWidget, QVBoxLayout, QWidget

from app.config import Settings
from app.services.app_state import AppState, DeviceState, SignedInUser
from app.ui.about_info import AboutInfo
from app.ui.asyncbridge import TaskRunner
from app.ui.banner import SharedDeviceBanner
from app.ui.i18n import LANGUAGES, LanguageSwitcher
from app.ui.login_view import LoginView, SignIn
from app.ui.notify import NotificationArea
from app.ui.observe import observe
from app.ui.status_indicators import StatusIndicators
from app.ui.theme import THEMES, ThemeController

if TYPE_CHECKING:
    from app.ui.about_dialog import AboutDialog
    from app.ui.workspace import Workspace


class MainWindow(QMainWindow):
    def __init__(
        self,
        *,
        state: AppState,
        runner: TaskRunner,
        sign_in: SignIn,
        about: AboutInfo,
        settings: Settings,
        save_settings: Callable[[Settings], None],
        languages: LanguageSwitcher,
        theme: ThemeController,
        on_close: Callable[[], Awaitable[None]] | None = None,
        sign_out: Callable[[], Awaitable[None]] | None = None,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.setObjectName("mainWindow")
        self._state = state
        self._runner = runner
        self._about = about
        self._settings = settings
        self._save_settings = save_settings
        self._languages = languages
        self._theme = theme
        self._on_close = on_close
        self._sign_out = sign_out

        self.banner = SharedDeviceBanner()
        self.banner.setVisible(about.policy.kiosk)
        self.notifications = NotificationArea()
        runner.errorReported.connect(self.notifications.show_message)
        self.login = LoginView(sign_in, runner, about.server_url)
        self._workspace: Workspace | None = None  # built at the first sign-in (start-up time)
        self.pages = QStackedWidget()
        self.pages.addWidget(self.login)

        central = QWidget()
        column = QVBoxLayout(central)
        column.setContentsMargins(0, 0, 0, 0)
        column.setSpacing(0)
        column.addWidget(self.banner)
        column.addWidget(self.notifications)
        column.addWidget(self.pages, 1)
        self.setCentralWidget(central)

        self.statusBar().setSizeGripEnabled(False)  # the window frame resizes; no stray grip
        self.indicators = StatusIndicators(
            state, self.statusBar(), warning_s=about.policy.lock_warning_s)
        self._build_menus()
        observe(state.events.user, self._user_changed, self)
        observe(state.events.device, self._show_fingerprint, self)
        observe(state.events.device_fingerprint, self._show_fingerprint, self)
        self._user_changed(state.user)
        self._show_fingerprint()
        self.resize(1100, 720)
        self.setMinimumSize(720, 520)
        self.retranslate()

    # -- pages -------------------------------------------------------------------------------

    @property
    def workspace(self) -> Workspace:
        if self._workspace is None:
            from app.ui.workspace import Workspace

            self._workspace = Workspace(self._state)
            self.pages.addWidget(self._workspace)
        return self._workspace

    def _user_changed(self, user: SignedInUser | None) -> None:
        self.pages.setCurrentWidget(self.workspace if user is not None else self.login)
        if user is None and self._workspace is not None:
            # Nothing of one user's session stays in widgets for the next one at this desk.
            self.pages.removeWidget(self._workspace)
            self._workspace.deleteLater()
            self._workspace = None
        self.sign_out_action.setEnabled(user is not None and self._sign_out is not None)
        self._focus_page()

    def sign_out(self) -> None:
        if self._sign_out is not None and self._state.user is not None:
            # The session service publishes the signed-out state; the window follows it.
            self._runner.run_task(self._sign_out(), owner=self)

    def _show_fingerprint(self, *_: object) -> None:
        pending = self._state.device == DeviceState.PENDING
        self.login.set_fingerprint(self._state.device_fingerprint if pending else "")

    def _focus_page(self) -> None:
        # Keyboard users start typing at once: the user name, or the navigation list.
        if self.pages.currentWidget() is self.login:
            self.login.username.setFocus()
        else:
            self.workspace.navigation.setFocus()

    def showEvent(self, event: QShowEvent) -> None:
        super().showEvent(event)
        self._focus_page()

    # -- menus -------------------------------------------------------------------------------

    def _build_menus(self) -> None:
        self.file_menu = QMenu(self)
        self.sign_out_action = QAction(self)
        self.sign_out_action.triggered.connect(self.sign_out)
        self.file_menu.addAction(self.sign_out_action)
        self.file_menu.addSeparator()
        self.quit_action = QAction(self)
        self.quit_action.setShortcut(QKeySequence.StandardKey.Quit)
        self.quit_action.triggered.connect(self.close)
        self.file_menu.addAction(self.quit_action)

        self.view_menu = QMenu(self)
        self.language_menu = self.view_menu.addMenu("")
        self.language_group = QActionGroup(self)
        self.language_actions: dict[str, QAction] = {}
        for code, native_name in LANGUAGES.items():
            action = QAction(native_name, self, checkable=True)
            action.setChecked(code == self._languages.current)
            action.triggered.connect(lambda _=False, code=code: self.set_language(code))
            self.language_group.addAction(action)
            self.language_menu.addAction(action)
            self.language_actions[code] = action
        self.theme_menu = self.view_menu.addMenu("")
        self.theme_group = QActionGroup(self)
        self.theme_actions: dict[str, QAction] = {}
        for theme in THEMES:
            action = QAction(self, checkable=True)
            action.setChecked(theme == self._theme.theme)
            action.triggered.connect(lambda _=False, theme=theme: self.set_theme(theme))
            self.theme_group.addAction(action)
            self.theme_menu.addAction(action)
            self.theme_actions[theme] = action

        self.help_menu = QMenu(self)
        self.about_action = QAction(self)
        self.about_action.triggered.connect(self.show_about)
        self.help_menu.addAction(self.about_action)

        for menu in (self.file_menu, self.view_menu, self.help_menu):
            self.menuBar().addMenu(menu)

    def set_language(self, code: str) -> None:
        if self._languages.apply(code):
            self._remember(replace(self._settings, language=code))
        else:
            self.notifications.show_message(self.tr(
                "This language is not installed. Run the set-up script again, or contact IT."))
        self.language_actions[self._languages.current].setChecked(True)

    def set_theme(self, theme: str) -> None:
        self._theme.apply(theme)
        self.theme_actions[theme].setChecked(True)
        self._remember(replace(self._settings, theme=theme))

    def _remember(self, settings: Settings) -> None:
        self._settings = settings
        try:
            self._save_settings(settings)
        except OSError:
            # The choice still applies to this session; say so rather than fail.
            self.notifications.show_message(self.tr(
                "Your preference could not be saved and applies until you close SafeConsult."))

    def show_about(self) -> AboutDialog:
        from app.ui.about_dialog import AboutDialog

        dialog = AboutDialog(self._about, self)
        dialog.setModal(True)
        dialog.show()
        return dialog

    # -- texts -------------------------------------------------------------------------------

    def retranslate(self) -> None:
        self.setWindowTitle("SafeConsult")
        self.file_menu.setTitle(self.tr("&File"))
        self.sign_out_action.setText(self.tr("Sign &out"))
        self.quit_action.setText(self.tr("&Quit"))
        self.view_menu.setTitle(self.tr("&View"))
        self.language_menu.setTitle(self.tr("&Language"))
        self.theme_menu.setTitle(self.tr("&Theme"))
        self.theme_actions["system"].setText(self.tr("Follow &system"))
        self.theme_actions["light"].setText(self.tr("&Light"))
        self.theme_actions["dark"].setText(self.tr("&Dark"))
        self.help_menu.setTitle(self.tr("&Help"))
        self.about_action.setText(self.tr("&About SafeConsult"))
        self.indicators.retranslate()

    def changeEvent(self, event: QEvent) -> None:
        if event.type() == QEvent.Type.LanguageChange:
            self.retranslate()
        super().changeEvent(event)

    def closeEvent(self, event: QCloseEvent) -> None:
        # Background work belongs to this window; nothing should call back into it later.
        self._runner.cancel_all()
        super().closeEvent(event)

    async def shutdown(self) -> None:
        """After the window closed: end the services it used (the composition root awaits it)."""
        self._runner.cancel_all()
        if self._on_close is not None:
            await self._on_close()

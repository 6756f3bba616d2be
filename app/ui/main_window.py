"""The main window: the frame every feature plugs into.

Top to bottom: the shared-device banner (kiosk policy only, with *Switch user*), the
notification area (errors from background work), the auto-lock warning, then one page --
sign-in, workspace, lock screen or the "data removed" message, whichever ``AppState`` calls
for -- and the status bar (connection, device, lock countdown). Menus switch language and
theme at runtime and save the choice to the user's settings.

Start-up: with ``paint_first=True`` (the composition root) the window is built with what its
first frame shows -- pages, status bar, the menu titles -- and :meth:`MainWindow.finish_start_up`
adds the rest right after that frame, before the event loop takes any input: the menus'
actions (with their shortcuts) and the observers of ``AppState`` (docs/performance.md).

Locking (:meth:`MainWindow.lock_now`, called by the auto-lock controller, the *Lock now*
action, or when the service reports ``LOCKED``) hides every PHI-tagged widget of every window
of the app (app/ui/phi.py) and any other open window, then shows the lock screen; unlocking
shows exactly those again.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import replace
from typing import TYPE_CHECKING

import shiboken6
from PySide6.QtCore import QEvent, QObject, Qt
from PySide6.QtGui import QCloseEvent, QShowEvent
from PySide6.QtWidgets import (
    QApplication,
    QMainWindow,
    QStackedWidget,
    QVBoxLayout,
    QWidget,
)

from app.config import Settings
from app.services.app_state import AppState, DeviceState, SignedInUser
from app.ui.about_info import AboutInfo
from app.ui.asyncbridge import TaskRunner
from app.ui.banner import SharedDeviceBanner
from app.ui.i18n import LANGUAGES, LanguageSwitcher, fill
from app.ui.login_view import LoginView, SignIn
from app.ui.notify import NotificationArea
from app.ui.observe import observe
from app.ui.status_indicators import StatusIndicators
from app.ui.theme import THEMES, ThemeController

if TYPE_CHECKING:
    from PySide6.QtGui import QAction

    from app.ui.about_dialog import AboutDialog
    from app.ui.lock_screen import LockScreen, LockWarning, Unlock
    from app.ui.wiped_view import WipedView
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
        lock: Callable[[], None] | None = None,
        unlock: Unlock | None = None,
        paint_first: bool = False,
        configure_workspace: Callable[[Workspace, SignedInUser], None] | None = None,
        parent: QWidget | None = None,
    ) -> None:
        """``paint_first=True`` builds only what the first frame shows: the window paints
        from the state's current values, and the menus have their titles but no actions yet.
        The caller then calls :meth:`finish_start_up` right after that frame, before the
        event loop runs (the composition root does; observing loads psygnal, ~30 ms of CPU,
        and the actions need QAction, QActionGroup and QKeySequence, whose Python types
        PySide6 builds, enums included, at first use)."""
        super().__init__(parent)
        self.setObjectName("mainWindow")
        self._state = state
        self._runner = runner
        self._about = about
        # Gives the workspace's views what they need from the signed-in session (the images
        # view: the watermark's user and device, the audit hook). Set by the composition root.
        self._configure_workspace = configure_workspace
        self._settings = settings
        self._save_settings = save_settings
        self._languages = languages
        self._theme = theme
        self._on_close = on_close
        self._sign_out = sign_out
        self._lock = lock
        self._kiosk = about.policy.kiosk
        self.auto_lock: QObject | None = None  # the LockController, set by the composition root
        # While locked: the PHI widgets and windows hidden by the lock, to show again.
        self._hidden_by_lock: list[QWidget] | None = None

        # Built top-down, each widget made inside its parent: a finished subtree given a
        # parent afterwards has its fonts, palette and style resolved a second time (~2 ms of
        # CPU for the sign-in form before the first frame).
        central = QWidget(self)
        self.setCentralWidget(central)
        self._column = column = QVBoxLayout(central)
        column.setContentsMargins(0, 0, 0, 0)
        column.setSpacing(0)
        self.banner = SharedDeviceBanner(central)
        self.banner.setVisible(self._kiosk)
        self.banner.switchUserRequested.connect(self.switch_user)
        self.notifications = NotificationArea(central)
        runner.errorReported.connect(self.notifications.show_message)
        # The warning before an idle lock is hidden until then: built when first needed,
        # like the lock screen (the lock screen's module is not part of the first frame).
        self._lock_warning: LockWarning | None = None
        self.pages = QStackedWidget(central)
        self.login = LoginView(sign_in, runner, about.server_url, self.pages)
        self.pages.addWidget(self.login)
        self._workspace: Workspace | None = None  # built at the first sign-in (start-up time)
        self._unlock = unlock
        # Built when first needed, not for the first frame (start-up time).
        self._lock_screen: LockScreen | None = None
        self._wiped: WipedView | None = None
        column.addWidget(self.banner)
        column.addWidget(self.notifications)
        column.addWidget(self.pages, 1)  # the lock warning goes above the pages when built

        self.statusBar().setSizeGripEnabled(False)  # the window frame resizes; no stray grip
        self.indicators = StatusIndicators(
            state, self.statusBar(), warning_s=about.policy.lock_warning_s, observe_state=False)
        self._actions_built = False
        self._build_menus()
        self._observing = False
        if not paint_first:
            self.finish_start_up()
        self._sync_page()
        self._show_fingerprint()
        self.resize(1100, 720)
        self.setMinimumSize(720, 520)
        self.retranslate()

    def finish_start_up(self) -> None:
        """What the first frame did not need (idempotent): the menus' actions and shortcuts,
        then the observers of ``AppState``."""
        self._build_menu_actions()
        self.observe_state()

    def observe_state(self) -> None:
        """Follow ``AppState`` from now on (idempotent); shows its current values first."""
        if self._observing:
            return
        self._observing = True
        state = self._state
        observe(state.events.user, self._sync_page, self)
        observe(state.events.locked, self._sync_page, self)
        observe(state.events.device, self._sync_page, self)
        observe(state.events.device, self._show_fingerprint, self)
        observe(state.events.device_fingerprint, self._show_fingerprint, self)
        observe(state.events.lock_seconds_left, self._show_lock_seconds, self)
        self.indicators.observe_state()
        self._sync_page()
        self._show_fingerprint()
        self._show_lock_seconds(state.lock_seconds_left)
        self._show_policy_problem()

    def _show_policy_problem(self) -> None:
        """A refused machine policy is said on the sign-in form, not only in About: with the
        safe defaults this computer may not reach the server at all (app/ui/policy_notice.py
        repeats it after sign-in and audits it)."""
        if self._state.policy_problem:
            self.login.show_error(fill(self.tr(
                "This computer's machine policy was refused, so SafeConsult runs on its safe "
                "defaults: %1 Please tell IT."), self._state.policy_problem))

    # -- pages -------------------------------------------------------------------------------

    @property
    def state(self) -> AppState:
        return self._state

    @property
    def settings(self) -> Settings:
        return self._settings

    @property
    def lock_warning(self) -> LockWarning:
        if self._lock_warning is None:
            from app.ui.lock_screen import LockWarning

            self._lock_warning = LockWarning()  # hidden until it has seconds to show
            self._column.insertWidget(self._column.indexOf(self.pages), self._lock_warning)
        return self._lock_warning

    def _show_lock_seconds(self, seconds: int | None) -> None:
        if seconds is None and self._lock_warning is None:
            return  # never shown: nothing to hide
        self.lock_warning.show_seconds(seconds)

    @property
    def lock_screen(self) -> LockScreen:
        if self._lock_screen is None:
            from app.ui.lock_screen import LockScreen

            self._lock_screen = LockScreen(self._unlock, self._runner)
            self._lock_screen.signOutRequested.connect(self.switch_user)
            self._lock_screen.unlockFailed.connect(self._unlock_failed)
            self.pages.addWidget(self._lock_screen)
        return self._lock_screen

    @property
    def wiped(self) -> WipedView:
        if self._wiped is None:
            from app.ui.wiped_view import WipedView

            self._wiped = WipedView()
            self.pages.addWidget(self._wiped)
        return self._wiped

    @property
    def workspace(self) -> Workspace:
        if self._workspace is None:
            from app.ui.workspace import Workspace

            self._workspace = Workspace(self._state)
            self.pages.addWidget(self._workspace)
            if self._configure_workspace is not None and self._state.user is not None:
                self._configure_workspace(self._workspace, self._state.user)
        return self._workspace

    def _sync_page(self, *_: object) -> None:
        """Show the page ``AppState`` calls for: data removed > signed out > locked > work."""
        state = self._state
        user: SignedInUser | None = state.user
        if state.device == DeviceState.WIPED or user is None:
            self._end_session_widgets()
            page: QWidget = self.wiped if state.device == DeviceState.WIPED else self.login
            self.pages.setCurrentWidget(page)
        elif state.locked:
            self._show_locked()
        else:
            self._show_unlocked()
        self._sync_actions()
        self.banner.set_signed_in(user is not None)
        self._focus_page()

    def _sync_actions(self) -> None:
        if not self._actions_built:
            return
        signed_in = self._state.user is not None
        self.sign_out_action.setEnabled(signed_in and self._sign_out is not None)
        self.switch_user_action.setEnabled(signed_in and self._sign_out is not None)
        self.lock_action.setEnabled(signed_in and not self._state.locked)

    def _end_session_widgets(self) -> None:
        self._hidden_by_lock = None  # what they were is gone with the session
        if self._workspace is not None:
            # Nothing of one user's session stays in widgets for the next one at this desk.
            self.pages.removeWidget(self._workspace)
            self._workspace.deleteLater()
            self._workspace = None
        if self._kiosk:
            self.login.reset()  # a shared cart remembers nobody, not even the user name

    # -- lock --------------------------------------------------------------------------------

    @property
    def locked(self) -> bool:
        return self._hidden_by_lock is not None

    def lock_now(self) -> None:
        """Hide every PHI widget at once and show the lock screen; then lock the session.

        Called by the auto-lock controller in the same call stack as its decision, so the
        widgets are hidden before Qt paints again. Idempotent.
        """
        if self._state.user is None or self._state.device == DeviceState.WIPED:
            return
        already = self.locked
        self._show_locked()
        if self._lock is not None and not already:
            self._lock()  # the service publishes LOCKED; _sync_page finds it done

    def _show_locked(self) -> None:
        if self._hidden_by_lock is None:
            self._hidden_by_lock = _hide_phi_everywhere(self)
            user = self._state.user
            self.lock_screen.prepare(user.username if user is not None else "")
        self.pages.setCurrentWidget(self.lock_screen)
        if self._actions_built:
            self.lock_action.setEnabled(False)

    def _show_unlocked(self) -> None:
        self.pages.setCurrentWidget(self.workspace)
        hidden, self._hidden_by_lock = self._hidden_by_lock, None
        for widget in hidden or ():
            if shiboken6.isValid(widget):
                widget.show()

    def _unlock_failed(self, message: str) -> None:
        if self._state.user is None:
            # The last failed attempt ended the session: say why on the sign-in screen.
            self.login.show_error(message)

    # -- ending a session --------------------------------------------------------------------

    def sign_out(self) -> None:
        if self._sign_out is not None and self._state.user is not None:
            # The session service publishes the signed-out state; the window follows it.
            self._runner.run_task(self._sign_out(), owner=self)

    def switch_user(self) -> None:
        """End this session completely (on a kiosk the service erases what it left) and
        hand over an empty sign-in form."""
        self.login.reset()
        self.sign_out()

    def _show_fingerprint(self, *_: object) -> None:
        pending = self._state.device == DeviceState.PENDING
        self.login.set_fingerprint(self._state.device_fingerprint if pending else "")

    def _focus_page(self) -> None:
        # Keyboard users start typing at once: the user name, the password, or the areas.
        page = self.pages.currentWidget()
        if page is self.login:
            self.login.username.setFocus()
        elif page is self._lock_screen and self._lock_screen is not None:
            self._lock_screen.password.setFocus()
        elif page is self._workspace:
            self._workspace.navigation.setFocus()

    def showEvent(self, event: QShowEvent) -> None:
        super().showEvent(event)
        self._focus_page()

    # -- menus -------------------------------------------------------------------------------

    def _build_menus(self) -> None:
        """The menu bar's titles: what the first frame shows of the menus. (Made by the menu
        bar from a title: adding a ready QMenu would return a QAction, one more Qt type.)"""
        bar = self.menuBar()
        self.file_menu = bar.addMenu("")
        self.view_menu = bar.addMenu("")
        self.help_menu = bar.addMenu("")

    def _build_menu_actions(self) -> None:
        """The menus' contents (idempotent). Until then the menus are empty titles; the
        composition root builds them right after the first frame, before any input is read,
        so every action and shortcut is there by the time a user can reach it."""
        if self._actions_built:
            return
        from PySide6.QtGui import QAction, QActionGroup, QKeySequence

        self.sign_out_action = QAction(self)
        self.sign_out_action.triggered.connect(self.sign_out)
        self.file_menu.addAction(self.sign_out_action)
        self.switch_user_action = QAction(self)
        self.switch_user_action.setObjectName("switchUser")
        self.switch_user_action.triggered.connect(self.switch_user)
        self.switch_user_action.setVisible(self._kiosk)  # shared carts only
        self.file_menu.addAction(self.switch_user_action)
        self.lock_action = QAction(self)
        self.lock_action.setShortcut(QKeySequence("Ctrl+L"))
        self.lock_action.setShortcutContext(Qt.ShortcutContext.ApplicationShortcut)
        self.lock_action.triggered.connect(self.lock_now)
        self.file_menu.addAction(self.lock_action)
        self.file_menu.addSeparator()
        self.quit_action = QAction(self)
        self.quit_action.setShortcut(QKeySequence.StandardKey.Quit)
        self.quit_action.triggered.connect(self.close)
        self.file_menu.addAction(self.quit_action)

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

        self.about_action = QAction(self)
        self.about_action.triggered.connect(self.show_about)
        self.help_menu.addAction(self.about_action)
        self._actions_built = True
        self._retranslate_actions()
        self._sync_actions()

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
        self.view_menu.setTitle(self.tr("&View"))
        self.help_menu.setTitle(self.tr("&Help"))
        self._retranslate_actions()
        self.indicators.retranslate()

    def _retranslate_actions(self) -> None:
        if not self._actions_built:
            return
        self.sign_out_action.setText(self.tr("Sign &out"))
        self.switch_user_action.setText(self.tr("S&witch user"))
        self.lock_action.setText(self.tr("&Lock now"))
        self.quit_action.setText(self.tr("&Quit"))
        self.language_menu.setTitle(self.tr("&Language"))
        self.theme_menu.setTitle(self.tr("&Theme"))
        self.theme_actions["system"].setText(self.tr("Follow &system"))
        self.theme_actions["light"].setText(self.tr("&Light"))
        self.theme_actions["dark"].setText(self.tr("&Dark"))
        self.about_action.setText(self.tr("&About SafeConsult"))

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


def _hide_phi_everywhere(main: QWidget) -> list[QWidget]:
    """Hide every PHI-tagged widget of every window, and every other window (a dialog or a
    viewer may show PHI, and a modal one would block the lock screen). Returns what was
    hidden, to show again on unlock."""
    from app.ui.phi import phi_widgets  # loaded by the first lock, not for the first frame

    hidden: list[QWidget] = []
    for top in QApplication.topLevelWidgets():
        for widget in phi_widgets(top):
            if not widget.isHidden():
                widget.hide()
                hidden.append(widget)
        if top is not main and top.isVisible():
            kind = top.windowType()
            top.hide()
            if kind in (Qt.WindowType.Window, Qt.WindowType.Dialog):
                hidden.append(top)  # menus, tool tips and pop-ups are not brought back
    return hidden

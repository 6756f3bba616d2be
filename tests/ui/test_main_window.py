"""The main window: which page shows, role-based navigation, status bar, banner, About."""

from __future__ import annotations

import asyncio

import pytest
from PySide6.QtCore import Qt

from app.config import Policy
from app.core.errors import ConnectionFailed
from app.services.app_state import AppState, ConnectionState, DeviceState, SignedInUser


def user(username: str, role: str) -> SignedInUser:
    return SignedInUser(user_id=f"u-{username}", username=username, role=role, device_id="d-1")


CLINICIAN = user("dr.chen", "physician")


def test_starts_on_the_sign_in_screen(make_window, qtbot, save_screenshot):
    window = make_window()
    with qtbot.waitActive(window):
        window.show()
    assert window.pages.currentWidget() is window.login
    assert window.login.username.hasFocus()
    assert window.windowTitle() == "SafeConsult"
    save_screenshot(window, "login.png")


def test_workspace_follows_the_signed_in_user(make_window, qtbot, save_screenshot):
    state = AppState()
    window = make_window(state=state)
    window.show()
    state.user = CLINICIAN
    state.connection = ConnectionState.ONLINE
    state.device = DeviceState.ACTIVE
    assert window.pages.currentWidget() is window.workspace
    assert window.workspace.current_area() == "consults"
    assert window.workspace.views["consults"].heading.text() == "No consults yet"
    assert window.workspace.user_label.text() == "Signed in as dr.chen (Physician)"
    save_screenshot(window, "main.png")
    first_workspace = window.workspace
    gone: list[bool] = []
    first_workspace.destroyed.connect(lambda *_: gone.append(True))
    state.user = None
    assert window.pages.currentWidget() is window.login
    # The signed-out user's workspace is destroyed, not kept for the next person.
    qtbot.waitUntil(lambda: gone == [True], timeout=2000)
    state.user = user("nurse.li", "nurse")
    assert window.workspace is not first_workspace
    assert window.workspace.user_label.text() == "Signed in as nurse.li (Nurse)"


@pytest.mark.parametrize(
    ("role", "areas"),
    [
        ("physician", ["consults", "chat", "images"]),
        ("nurse", ["consults", "chat", "images"]),
        ("consultant", ["consults", "chat", "images"]),
        ("it_admin", ["consults", "chat", "images", "admin"]),
        ("auditor", ["consults", "chat", "images", "admin"]),
        ("a_role_from_a_newer_server", ["consults", "chat", "images"]),
    ],
)
def test_admin_area_only_for_admin_roles(make_window, role, areas):
    state = AppState(user=user("someone", role))
    window = make_window(state=state)
    assert window.workspace.visible_areas() == areas


def test_losing_the_admin_role_leaves_the_admin_area(make_window, qtbot):
    state = AppState(user=user("it.li", "it_admin"))
    window = make_window(state=state)
    window.show()
    window.workspace.show_area("admin")
    assert window.workspace.current_area() == "admin"
    state.user = CLINICIAN
    assert "admin" not in window.workspace.visible_areas()
    assert window.workspace.current_area() == "consults"
    window.workspace.show_area("admin")  # a hidden area cannot be reached by shortcut either
    assert window.workspace.current_area() == "consults"


def test_keyboard_shortcuts_switch_areas(make_window, qtbot):
    state = AppState(user=CLINICIAN)
    window = make_window(state=state)
    with qtbot.waitActive(window):
        window.show()
    assert window.workspace.navigation.hasFocus()
    qtbot.keyClick(window.workspace.navigation, Qt.Key.Key_3, Qt.KeyboardModifier.ControlModifier)
    assert window.workspace.current_area() == "images"
    assert window.workspace.stack.currentWidget() is window.workspace.views["images"]
    qtbot.keyClick(window.workspace.navigation, Qt.Key.Key_Up)
    assert window.workspace.current_area() == "chat"


def test_status_bar_reflects_state(make_window):
    state = AppState()
    window = make_window(state=state)
    bar = window.indicators
    assert bar.connection.text() == "Offline"
    assert bar.device.text() == "Device not enrolled"
    assert bar.lock.isHidden()
    state.connection = ConnectionState.CONNECTING
    assert bar.connection.text() == "Connecting…"
    state.connection = ConnectionState.CERTIFICATE_ERROR
    assert "contact IT" in bar.connection.text()
    assert bar.connection.property("state") == "bad"
    state.connection = ConnectionState.ONLINE
    assert (bar.connection.text(), bar.connection.property("state")) == ("Online", "ok")
    state.device = DeviceState.PENDING
    assert bar.device.text() == "Device awaiting IT approval"
    state.device = DeviceState.REVOKED
    assert bar.device.property("state") == "bad"
    state.device = DeviceState.WIPED
    assert bar.device.text() == "SafeConsult data removed by IT"
    assert bar.device.property("state") == "bad"
    state.lock_seconds_left = 125
    assert not bar.lock.isHidden() and bar.lock.text() == "Locks in 2:05"
    assert not bar.lock.property("state")  # neutral: unset and "" match no alarm rule
    state.lock_seconds_left = 9  # inside the policy's 30 s warning
    assert bar.lock.text() == "Locks in 0:09" and bar.lock.property("state") == "bad"
    state.lock_seconds_left = None
    assert bar.lock.isHidden()


def test_shared_device_banner_only_in_kiosk_mode(make_window, save_screenshot):
    assert make_window().banner.isHidden()
    kiosk = make_window(policy=Policy(kiosk=True))
    kiosk.show()
    assert kiosk.banner.isVisible()
    assert "Shared device" in kiosk.banner.label.text()
    save_screenshot(kiosk, "login-kiosk.png")


def test_background_errors_reach_the_notification_area(make_window, qtbot):
    window = make_window()
    window.show()

    async def failing() -> None:
        raise ConnectionFailed("connect timeout to 10.0.0.5")

    window._runner.run_task(failing(), owner=window)
    qtbot.waitUntil(window.notifications.isVisible, timeout=2000)
    assert window.notifications.message.text() == ConnectionFailed.user_message
    qtbot.mouseClick(window.notifications.dismiss, Qt.MouseButton.LeftButton)
    assert window.notifications.isHidden()


def test_about_with_defaults(make_window, qtbot):
    dialog = make_window().show_about()
    qtbot.addWidget(dialog)
    assert dialog.value("version") == "9.9.9"
    assert dialog.value("policy") == "Built-in defaults"
    assert dialog.value("signer") == "Not applicable"
    assert dialog.value("server") == "https://127.0.0.1:8443"
    assert dialog.value("data").endswith("data")
    assert not dialog.findChild(type(dialog.heading), "about_problem").isVisible()


def test_about_with_a_signed_policy_and_a_problem(make_window, qtbot, save_screenshot):
    policy = Policy(server_url="https://consult.example-hospital.org", source="/etc/p.json",
                    signer="IT Security (key 3f9a)")
    problem = ("/etc/safeconsult/policy.json: the signature does not match the file, so the "
               "policy was refused and safe defaults are in force")
    dialog = make_window(policy=policy, problem=problem).show_about()
    qtbot.addWidget(dialog)
    assert dialog.value("policy") == "/etc/p.json"
    assert dialog.value("signer") == "IT Security (key 3f9a)"
    assert dialog.value("server") == "https://consult.example-hospital.org"
    assert dialog.value("problem") == problem
    # Every row is shown whole: the dialog is at least as tall as its rows need.
    value = dialog.findChild(type(dialog.heading), "about_data")
    assert value.height() >= value.sizeHint().height()
    assert value.width() >= value.sizeHint().width()
    assert dialog.findChild(type(dialog.heading), "about_problem").isVisible()
    save_screenshot(dialog, "about.png")


def test_about_with_an_unsigned_policy_file(make_window, qtbot):
    dialog = make_window(policy=Policy(source="/etc/p.json")).show_about()
    qtbot.addWidget(dialog)
    assert dialog.value("signer") == "Not signed"


def test_pending_device_shows_its_fingerprint_on_the_sign_in_screen(make_window):
    state = AppState()
    window = make_window(state=state)
    window.show()
    assert window.login.fingerprint.isHidden()
    state.device_fingerprint = "AbCd EfGh 1234"
    assert window.login.fingerprint.isHidden()  # only while approval is pending
    state.device = DeviceState.PENDING
    assert window.login.fingerprint.isVisible()
    assert window.login.fingerprint.text() == "AbCd EfGh 1234"
    state.device = DeviceState.ACTIVE
    assert window.login.fingerprint.isHidden()


def test_shutdown_runs_the_close_hook(make_window, qtbot):
    closed: list[bool] = []

    async def on_close() -> None:
        closed.append(True)

    window = make_window(on_close=on_close)
    task = asyncio.ensure_future(window.shutdown())
    qtbot.waitUntil(task.done, timeout=2000)
    task.result()
    assert closed == [True]


def test_sign_out_is_offered_only_while_signed_in(make_window, qtbot):
    state = AppState()
    calls: list[str] = []

    async def sign_out() -> None:
        calls.append("sign out")
        state.user = None  # what the session service's snapshot does

    window = make_window(state=state, sign_out=sign_out)
    assert not window.sign_out_action.isEnabled()
    state.user = CLINICIAN
    assert window.sign_out_action.isEnabled()
    window.sign_out_action.trigger()
    qtbot.waitUntil(lambda: window.pages.currentWidget() is window.login, timeout=2000)
    assert calls == ["sign out"]
    assert not window.sign_out_action.isEnabled()


def test_the_shell_itself_shows_no_patient_data(make_window):
    """PHI arrives only with feature views; the shell's own widgets are never tagged, and a
    tagged view placed in it is found by the one walk lock and redaction use."""
    from PySide6.QtWidgets import QLabel

    from app.core.phi import Phi
    from app.ui.phi import PhiLabel, phi_widgets

    state = AppState(user=CLINICIAN)
    window = make_window(state=state)
    window.show()
    views = window.workspace.stack  # feature views may tag their own (the image viewer does)
    assert [w for w in phi_widgets(window) if not views.isAncestorOf(w)] == []
    assert phi_widgets(window.workspace.views["consults"]) == []
    name = PhiLabel(Phi("Patient Name"), window.workspace.views["consults"])
    assert name in phi_widgets(window)
    assert phi_widgets(window.workspace.views["consults"]) == [name]
    assert isinstance(name, QLabel)


def test_painted_first_the_shell_is_complete_once_start_up_finishes(make_window, qtbot):
    """The composition root builds the window with what its first frame shows and finishes
    it right after that frame (app/main.py): then it is the same window as one built whole."""
    state = AppState()
    window = make_window(state=state, paint_first=True, sign_out=lambda: None)
    window.show()
    assert [m.title() for m in (window.file_menu, window.view_menu, window.help_menu)] == [
        "&File", "&View", "&Help"]  # the menu bar looks the same in the first frame
    assert window.file_menu.actions() == [] and not hasattr(window, "lock_action")
    state.user = CLINICIAN  # not observed yet: still the sign-in page
    assert window.pages.currentWidget() is window.login
    window.finish_start_up()
    window.finish_start_up()  # idempotent
    assert window.pages.currentWidget() is window.workspace
    assert [a.text() for a in window.file_menu.actions() if not a.isSeparator()] == [
        "Sign &out", "S&witch user", "&Lock now", "&Quit"]
    assert window.lock_action.shortcut().toString() == "Ctrl+L"
    assert window.sign_out_action.isEnabled() and window.lock_action.isEnabled()
    assert [a.text() for a in window.language_menu.actions()] == ["English", "简体中文"]
    assert window.theme_actions["light"].isChecked()  # the theme fixture's choice
    assert window.about_action.text() == "&About SafeConsult"
    with qtbot.waitActive(window):
        window.activateWindow()
    qtbot.keyClick(window, Qt.Key.Key_L, Qt.KeyboardModifier.ControlModifier)
    assert window.locked  # the shortcut works
    assert window.pages.currentWidget() is window.lock_screen


def test_the_lock_warning_is_built_when_first_needed(make_window):
    state = AppState(user=CLINICIAN)
    window = make_window(state=state)
    window.show()
    assert window._lock_warning is None  # not part of the first frame
    state.lock_seconds_left = 20
    warning = window.lock_warning
    assert warning.isVisible() and "20" in warning.label.text()
    # Between the notifications and the pages, as before.
    column = window._column
    assert column.indexOf(warning) == column.indexOf(window.pages) - 1
    assert column.indexOf(window.notifications) < column.indexOf(warning)
    state.lock_seconds_left = None
    assert warning.isHidden()

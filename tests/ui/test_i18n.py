"""English and Simplified Chinese: choice of language, live switching, complete catalogue."""

from __future__ import annotations

import inspect
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

import app.core.errors as core_errors
from app.config import Settings
from app.services.app_state import AppState, ConnectionState, SignedInUser
from app.ui.error_texts import USER_MESSAGES
from app.ui.i18n import CHINESE, ENGLISH, LanguageSwitcher, fill, pick_language

ROOT = Path(__file__).resolve().parents[2]
TS = ROOT / "app" / "ui" / "i18n" / "safeconsult_zh_CN.ts"


@pytest.mark.parametrize(
    ("setting", "ui_languages", "expected"),
    [
        ("", ["zh-CN", "zh-Hans-CN", "zh"], CHINESE),
        ("", ["zh-Hans-SG"], CHINESE),
        ("", ["en-GB", "en"], ENGLISH),
        ("", ["de-DE", "zh-CN"], CHINESE),  # the first language we have wins
        ("", ["zh-TW", "zh-Hant"], ENGLISH),  # Traditional is not offered; not Simplified
        ("", ["fr-FR"], ENGLISH),
        ("en", ["zh-CN"], ENGLISH),  # the user's setting beats the OS
        ("zh_CN", ["en-US"], CHINESE),
        ("klingon", ["zh-CN"], CHINESE),  # an unknown setting is ignored
    ],
)
def test_pick_language(setting, ui_languages, expected):
    assert pick_language(setting, ui_languages) == expected


def test_fill_is_single_pass():
    assert fill("Signed in as %1 (%2)", "a%2b", "Clinician") == "Signed in as a%2b (Clinician)"
    assert fill("%2 后 %1", "x", "y") == "y 后 x"


def test_switch_to_chinese_and_back_live(qtbot, make_window, languages, save_screenshot):
    saved: list[Settings] = []
    state = AppState(user=SignedInUser("u1", "dr.chen", "it_admin", "d1"),
                     connection=ConnectionState.ONLINE, lock_seconds_left=25)
    window = make_window(state=state, saved=saved)
    window.show()
    login_window = make_window(saved=saved)

    window.language_actions[CHINESE].trigger()
    # Qt posts LanguageChange; the widgets retranslate when it is delivered.
    qtbot.waitUntil(lambda: window.file_menu.title() != "&File", timeout=2000)

    assert languages.current == CHINESE
    assert window.language_actions[CHINESE].isChecked()
    assert window.file_menu.title() == "文件(&F)"
    assert window.workspace.navigation.item(0).text() == "会诊"
    assert window.workspace.views["consults"].heading.text() == "暂无会诊"
    assert window.workspace.user_label.text() == "已登录：dr.chen（信息科管理员）"
    assert window.indicators.connection.text() == "在线"
    assert window.indicators.lock.text() == "0:25 后锁定"  # the warning before the lock
    assert window.lock_warning.label.text() == "25 秒后锁定 – 移动鼠标可保持登录"
    assert login_window.login.heading.text() == "登录 SafeConsult"
    assert login_window.login.submit.text() == "登录"
    assert saved[-1].language == CHINESE
    login_window.show()
    save_screenshot(login_window, "login-zh_CN.png")
    save_screenshot(window, "main-zh_CN.png")

    window.language_actions[ENGLISH].trigger()
    qtbot.waitUntil(lambda: window.file_menu.title() == "&File", timeout=2000)

    assert window.workspace.navigation.item(0).text() == "Consults"
    assert login_window.login.heading.text() == "Sign in to SafeConsult"
    assert window.indicators.lock.text() == "Locks in 0:25"
    assert saved[-1].language == ENGLISH


def test_error_messages_are_translated(qloop, languages):
    from app.core.errors import ConnectionFailed
    from app.ui.asyncbridge import user_message

    languages.apply(CHINESE)
    assert user_message(ConnectionFailed()) == "无法连接 SafeConsult 服务器。请检查网络后重试。"
    assert user_message(KeyError("x")).startswith("出现了问题。")


def test_missing_catalogue_keeps_english(qapp, tmp_path, make_window):
    switcher = LanguageSwitcher(qapp, tmp_path)  # no .qm files here
    assert switcher.apply(CHINESE) is False
    assert switcher.current == ENGLISH
    with pytest.raises(ValueError):
        switcher.apply("xx")


def test_catalogue_is_complete():
    root = ET.parse(TS).getroot()
    assert root.get("language") == "zh_CN"
    unfinished = [m.findtext("source") for m in root.iter("message")
                  if m.find("translation").get("type") in ("unfinished", "obsolete", "vanished")
                  or not (m.findtext("translation") or "").strip()]
    assert unfinished == []
    for message in root.iter("message"):
        source, translation = message.findtext("source"), message.findtext("translation")
        # Placeholders and mnemonics survive translation.
        for token in ("%1", "%2"):
            assert (token in source) == (token in translation), source
        assert ("&" in source) == ("&" in translation), source


def test_catalogue_covers_every_string_in_the_code(tmp_path):
    """lupdate over app/ui finds nothing that the checked-in catalogue lacks."""
    fresh = tmp_path / "fresh.ts"
    lupdate = Path(sys.executable).with_name("pyside6-lupdate")
    sources = sorted(str(p) for p in (ROOT / "app" / "ui").rglob("*.py"))
    subprocess.run([str(lupdate), *sources, "-ts", str(fresh), "-silent"], check=True)

    def messages(path: Path) -> set[tuple[str, str]]:
        return {(ctx.findtext("name"), m.findtext("source"))
                for ctx in ET.parse(path).getroot().iter("context") for m in ctx.iter("message")}

    assert messages(fresh) - messages(TS) == set()
    assert len(messages(fresh)) > 60


def test_every_error_on_the_sign_in_path_is_translatable():
    import app.core.errors
    import app.crypto.identity
    import app.net.auth_api
    import app.security.device_binding
    import app.security.keystore
    import app.services.demo_server
    import app.storage.errors
    from app.services.session import REFUSALS

    modules = (app.core.errors, app.net.auth_api, app.security.keystore,
               app.security.device_binding, app.crypto.identity, app.storage.errors,
               app.services.demo_server)
    messages = {c.user_message for m in modules for _, c in inspect.getmembers(m, inspect.isclass)
                if issubclass(c, core_errors.SafeConsultError)} | set(REFUSALS.values())
    assert messages - set(USER_MESSAGES) == set()


def _module_tr_strings() -> set[tuple[str, str]]:
    """(context, text) of every literal passed to a module's own ``_tr`` helper (a wrapper
    of ``QCoreApplication.translate`` with a fixed context, which lupdate does not see)."""
    import ast

    found: set[tuple[str, str]] = set()
    for path in sorted((ROOT / "app" / "ui").rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        context = None
        for node in tree.body:
            if isinstance(node, ast.FunctionDef) and node.name == "_tr":
                for call in ast.walk(node):
                    if (isinstance(call, ast.Call) and isinstance(call.func, ast.Attribute)
                            and call.func.attr == "translate" and call.args
                            and isinstance(call.args[0], ast.Constant)):
                        context = call.args[0].value
        if context is None:
            continue
        for call in ast.walk(tree):
            if (isinstance(call, ast.Call) and isinstance(call.func, ast.Name)
                    and call.func.id == "_tr" and call.args):
                parts = call.args[0]
                if isinstance(parts, ast.Constant) and isinstance(parts.value, str):
                    found.add((context, parts.value))
    return found


def test_catalogue_covers_every_module_tr_string():
    catalogue = {(ctx.findtext("name"), m.findtext("source"))
                 for ctx in ET.parse(TS).getroot().iter("context") for m in ctx.iter("message")}
    strings = _module_tr_strings()
    assert len(strings) > 10
    assert sorted(strings - catalogue) == []

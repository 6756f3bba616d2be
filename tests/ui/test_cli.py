"""The ``safeconsult`` command: --version/--help, argument rules, and a light start-up."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from app import __version__
from app import main as app_main
from app.config import Policy, PolicyLoad

ROOT = Path(__file__).resolve().parents[2]
# Imported only by the features that need them, never to show the first window.
HEAVY = ("aiortc", "av", "pydicom", "cv2", "vodozemac", "sqlcipher3", "numpy", "httpx",
         "websockets", "keyring", "cryptography")


def run(*args: str, code: str | None = None, timeout: float = 60,
        env_extra: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen", **(env_extra or {})}
    command = [sys.executable, "-c", code] if code else [sys.executable, "-m", "app.main", *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=timeout, cwd=ROOT,
                          env=env)


def test_version():
    result = run("--version")
    assert result.returncode == 0
    assert result.stdout.strip() == f"SafeConsult {__version__}"


def test_help_lists_the_options():
    result = run("--help")
    assert result.returncode == 0
    for option in ("--version", "--demo", "--join DIR", "--data-dir DIR", "--policy FILE",
                   "--screenshot PATH"):
        assert option in result.stdout


def test_version_does_not_load_qt():
    code = ("import sys; from app.main import main\n"
            "try: main(['--version'])\n"
            "except SystemExit: pass\n"
            "print(any(m.startswith('PySide6') for m in sys.modules))")
    assert run(code=code).stdout.strip().splitlines()[-1] == "False"


def test_policy_without_demo_is_ignored_with_a_warning(monkeypatch, tmp_path, capsys):
    seen = {}
    monkeypatch.setattr(app_main, "_run_gui", lambda args, load, paths, settings, **_:
                        seen.update(policy=load.policy, data=paths.data) or 0)
    asked: list[Path | None] = []
    verifiers: list = []
    monkeypatch.setattr(app_main, "load_policy",
                        lambda path=None, verify=None: asked.append(path)
                        or verifiers.append(verify) or PolicyLoad(Policy()))
    policy = tmp_path / "policy.json"
    policy.write_text('{"kiosk": true}')
    assert app_main.main(["--policy", str(policy), "--data-dir", str(tmp_path / "d")]) == 0
    assert "only honoured with --demo" in capsys.readouterr().err
    assert asked == [None]  # the machine policy's own location, not the file given
    assert verifiers == [app_main._verify_signed_policy]  # and its signature is checked
    assert seen["policy"].kiosk is False
    assert seen["data"] == tmp_path / "d" / "data"


@pytest.mark.parametrize("argv", [
    [], ["--data-dir", "/tmp/d"], ["--screenshot", "s.png"],
    ["--screenshot", "s.png", "--data-dir", "/tmp/d"], ["--data-dir", "/tmp/a b"],
])
def test_the_common_command_lines_parse_as_argparse_would(argv):
    assert app_main._parse_common(argv) == app_main.build_parser().parse_args(argv)


@pytest.mark.parametrize("argv", [
    ["--demo"], ["--data-dir=/tmp/d"], ["--data", "/tmp/d"], ["--data-dir"],
    ["--data-dir", "/tmp/a", "--data-dir", "/tmp/b"], ["--data-dir", "--demo"],
    ["--data-dir", ""], ["--screenshot", "s.png", "--policy", "p.json"], ["--help"],
    ["--version"], ["-h", "x"],
])
def test_every_other_command_line_is_left_to_argparse(argv):
    assert app_main._parse_common(argv) is None


def test_join_needs_demo(capsys):
    assert app_main.main(["--join", "/tmp/x"]) == 2
    assert "--join needs --demo" in capsys.readouterr().err


def test_demo_starts_the_embedded_server_and_points_the_client_at_it(tmp_path):
    """--demo end to end: server process, demo users printed, client window rendered, server
    stopped when the window goes."""
    png = tmp_path / "demo.png"
    result = run("--demo", "--data-dir", str(tmp_path / "d"), "--screenshot", str(png),
                 timeout=120)
    assert result.returncode == 0, result.stderr
    assert "SafeConsult demo server: https://127.0.0.1:" in result.stdout
    assert "Demo users" in result.stdout
    assert "device keys are kept in memory only" in result.stdout
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    manifest = json.loads((tmp_path / "d" / "demo" / "demo.json").read_text())
    # The server is gone with the window: its port no longer answers.
    import socket
    port = int(manifest["url"].rsplit(":", 1)[1])
    with socket.socket() as probe:
        assert probe.connect_ex(("127.0.0.1", port)) != 0


def test_join_without_a_running_demo_says_so(tmp_path):
    result = run("--demo", "--join", str(tmp_path))
    assert result.returncode == 1
    assert "No running demo found" in result.stderr


def test_screenshot_renders_the_login_window_without_heavy_imports(tmp_path):
    png = tmp_path / "shot.png"
    code = (
        "import gc, json, sys\n"
        "import app.main\n"
        "seen = {}\n"
        "save = app.main._save_screenshot\n"
        "def spy(window, path):\n"
        "    seen['modules'] = sorted(sys.modules)  # what the first frame needed\n"
        "    # Qt types PySide6 has made for Python so far (it makes each at first use)\n"
        "    seen['qt'] = sorted(n for m in ('QtCore', 'QtGui', 'QtWidgets')\n"
        "                        for n in vars(sys.modules['PySide6.' + m]))\n"
        "    seen['gc'] = gc.isenabled()\n"
        "    seen['actions'] = hasattr(window, 'lock_action')\n"
        "    save(window, path)\n"
        "app.main._save_screenshot = spy\n"
        "finish = app.main._after_first_frame\n"
        "def after(window, *args):\n"
        "    finish(window, *args)\n"
        "    from PySide6.QtWidgets import QApplication\n"
        "    seen['after'] = [window.lock_action.shortcut().toString(),\n"
        "                     window.quit_action.text(), len(window.view_menu.actions()),\n"
        "                     window.lock_action.isEnabled(), window._observing,\n"
        "                     not QApplication.windowIcon().isNull()]\n"
        "app.main._after_first_frame = after\n"
        f"rc = app.main.main(['--screenshot', {str(png)!r},"
        f" '--data-dir', {str(tmp_path / 'd')!r}])\n"
        "from PySide6.QtWidgets import QApplication\n"
        "QApplication.instance().setStyleSheet('')  # the style under our style sheet\n"
        "print(json.dumps({'rc': rc, **seen, 'gc_after': gc.isenabled(),\n"
        "                  'style': QApplication.style().name()}))\n"
    )
    # A desktop that asks for another style: ours must still be Fusion.
    result = run(code=code, env_extra={"QT_STYLE_OVERRIDE": "windows"})
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["rc"] == 0
    loaded = {name.split(".")[0] for name in report["modules"]}
    assert "PySide6" in loaded  # the check is real: it did start the GUI
    assert loaded.isdisjoint(HEAVY), sorted(loaded & set(HEAVY))
    # Paint first: the event loop machinery, the state's observers (psygnal, which reads its
    # version through importlib.metadata) and the log file's handlers load after the first frame.
    assert loaded.isdisjoint({"qasync", "psygnal", "ctypes"}), sorted(loaded)
    assert "logging.handlers" not in report["modules"]
    assert "importlib.metadata" not in report["modules"]
    # Built when first needed, not for the first frame: the lock screen's module (lock
    # warning, lock screen, PIN dialog), the PHI walk, the About dialog.
    for module in ("app.ui.lock_screen", "app.ui.phi", "app.ui.about_dialog"):
        assert module not in report["modules"], module
    # Qt types whose Python side (PySide6 builds each type's enums at its first use) the first
    # frame does without: the style (Fusion comes as an argument of the QApplication), the
    # menus' actions and key sequences (built right after the frame), the window icon.
    for qt_type in ("QStyle", "QCommonStyle", "QAction", "QActionGroup", "QKeySequence",
                    "QIcon", "QLibraryInfo"):
        assert qt_type not in report["qt"], qt_type
    assert report["style"] == "fusion"  # the same style as setStyle("Fusion") gave
    # No cyclic GC until the frame; back on right after it, whatever the path.
    assert report["gc"] is False and report["gc_after"] is True
    # The rest of the shell is there before the event loop reads any input.
    assert report["actions"] is False
    assert report["after"] == ["Ctrl+L", "&Quit", 2, False, True, True]
    assert "screenshot saved" in result.stdout
    header = png.read_bytes()[:24]
    assert header[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = int.from_bytes(header[16:20], "big"), int.from_bytes(header[20:24], "big")
    assert width >= 720 and height >= 520
    assert (tmp_path / "d" / "logs" / "safeconsult.log").parent.is_dir()


@pytest.mark.skipif(sys.platform == "win32", reason="console script path differs")
def test_console_script_is_installed():
    script = Path(sys.executable).with_name("safeconsult")
    assert script.exists()
    result = subprocess.run([str(script), "--version"], capture_output=True, text=True,
                            timeout=60)
    assert result.stdout.strip() == f"SafeConsult {__version__}"


def test_runs_the_event_loop_until_the_window_closes(tmp_path):
    """The ordinary path: first frame, then the qasync loop and the device preparation
    (which enables the sign-in form), then a clean exit on close."""
    code = (
        "import sys\n"
        "from PySide6.QtCore import QTimer\n"
        "from PySide6.QtWidgets import QApplication\n"
        "from app.main import main\n"
        "app = QApplication(sys.argv[:1])\n"
        "def close_all():\n"
        "    import asyncio\n"
        "    try: running = asyncio.get_event_loop().is_running()\n"
        "    except RuntimeError: running = False\n"
        "    ready = any(w.login.submit.isEnabled() for w in app.topLevelWidgets()\n"
        "                if w.objectName() == 'mainWindow')\n"
        "    if not (running and ready): return QTimer.singleShot(50, close_all)\n"
        "    print('loop running:', running)\n"
        "    for w in app.topLevelWidgets(): w.close()\n"
        "QTimer.singleShot(50, close_all)\n"
        f"rc = main(['--data-dir', {str(tmp_path)!r}])\n"
        "print('rc', rc, 'qasync' in sys.modules)\n"
    )
    result = run(code=code)
    assert result.returncode == 0, result.stderr
    assert "loop running: True" in result.stdout
    assert result.stdout.strip().splitlines()[-1] == "rc 0 True"


@pytest.mark.skipif(not (ROOT / "app/ui/i18n/safeconsult_zh_CN.qm").exists(),
                    reason="translations not compiled (scripts/bootstrap.sh compiles them)")
def test_saved_language_and_theme_apply_at_start_up(tmp_path):
    settings = tmp_path / "config" / "settings.json"
    settings.parent.mkdir(parents=True)
    settings.write_text(json.dumps({"language": "zh_CN", "theme": "dark"}))
    code = (
        "import sys\n"
        "from PySide6.QtCore import QTimer\n"
        "from PySide6.QtGui import QPalette\n"
        "from PySide6.QtWidgets import QApplication\n"
        "from app.main import main\n"
        "app = QApplication(sys.argv[:1])\n"
        "def report():\n"
        "    w = [w for w in app.topLevelWidgets() if w.objectName() == 'mainWindow']\n"
        "    if not w: return QTimer.singleShot(50, report)\n"
        "    window = w[0]\n"
        "    dark = app.palette().color(QPalette.ColorRole.Window).lightness() < 80\n"
        "    print('heading', window.login.heading.text(), 'dark', dark)\n"
        "    window.close()\n"
        "QTimer.singleShot(50, report)\n"
        f"main(['--data-dir', {str(tmp_path)!r}])\n"
    )
    result = run(code=code)
    assert result.returncode == 0, result.stderr
    assert "heading 登录 SafeConsult dark True" in result.stdout


def test_demo_keys_live_in_memory_and_the_os_keyring_is_used_otherwise(monkeypatch):
    from app.security.keystore import KeyringKeyStore, MemoryKeyStore

    demo = app_main._keystore_for(Policy(), in_memory=True)
    store = demo("dr.demo", "DEVICE1")
    assert isinstance(store, MemoryKeyStore)
    assert demo("dr.demo", "DEVICE1") is store  # one store per pair: its keys agree
    opened = []
    monkeypatch.setattr(KeyringKeyStore, "open",
                        classmethod(lambda cls, user, device: opened.append((user, device))))
    app_main._keystore_for(Policy())("dr.ward", "DEVICE2")
    assert opened == [("dr.ward", "DEVICE2")]

"""GUI composition root: ``safeconsult [--demo [--join DIR]] [--data-dir DIR] ...``.

Order: command line -> machine policy (or the demo's) -> paths -> logging -> settings ->
QApplication -> the sign-in window, painted -> the qasync loop -> services on demand.

Start-up stays light on purpose: this module imports only the standard library and
``app.config`` at the top; Qt comes in when a window is really needed (``--version`` and
``--help`` never load it); the sign-in window is painted before asyncio and qasync load, with
only the Qt types its first frame shows (PySide6 builds each type's Python enums at first use)
and no cyclic GC until then; what it does not show (menu actions and shortcuts, observers,
log file, window icon) follows right after the frame, before any input is read; and the
session service -- which brings vodozemac, sqlcipher3 and httpx -- loads at the first
sign-in. tests/ui/test_cli.py checks this; tests/bench/test_startup_bench.py measures it.
"""

from __future__ import annotations

import argparse
import gc
import importlib
import os
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from app import __version__
from app.config import Paths, Policy, PolicyLoad, Settings, load_policy

if TYPE_CHECKING:
    from PySide6.QtWidgets import QApplication

    from app.security.keystore import KeyStore

ICON = Path(__file__).resolve().parent.parent / "resources" / "icons" / "safeconsult.svg"

SignIn = Callable[[str, str, str], Awaitable[None]]
KeyStoreFor = Callable[[str, str], "KeyStore"]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="safeconsult",
        description="SafeConsult: secure clinical consults (encrypted video, chat and images).",
        epilog="Tools: `safeconsult verify-release ARTIFACT --key PUB` checks a signed release; "
               "`safeconsult deidentify IN... --out DIR` writes de-identified DICOM copies; "
               "`safeconsult --self-test` checks this installation; "
               "`safeconsult update [--check]` fetches a verified update.",
    )
    parser.add_argument("--version", action="version", version=f"SafeConsult {__version__}")
    parser.add_argument(
        "--demo", action="store_true",
        help="start an embedded reference server on localhost with demo users, then the client",
    )
    parser.add_argument(
        "--join", type=Path, metavar="DIR",
        help="with --demo: join the demo already running from DIR (a second client)",
    )
    parser.add_argument(
        "--data-dir", type=Path, metavar="DIR",
        help="keep this client's data, settings and logs under DIR (default: per-user folders)",
    )
    parser.add_argument(
        "--policy", type=Path, metavar="FILE",
        help="with --demo only: use this policy file instead of the machine policy",
    )
    parser.add_argument(
        "--screenshot", type=Path, metavar="PATH",
        help="render the first window offscreen, save it as PNG to PATH and exit",
    )
    return parser


# Subcommands that are tools, not the GUI: dispatched before any GUI set-up.
TOOLS = {
    "verify-release": ("app.tools.release", "verify_release_main"),
    "deidentify": ("app.tools.deidentify", "main"),
    "--self-test": ("app.selftest", "main"),  # checks this installation (app/selftest.py)
    "update": ("app.tools.update_check", "main"),  # verified updates (app/services/updates.py)
}


def _parse_common(argv: list[str]) -> argparse.Namespace | None:
    """The command lines a workstation really starts with -- none, ``--data-dir DIR``,
    ``--screenshot PATH`` -- parsed without building the argparse parser (~2 ms of CPU
    before the first frame). Anything else (other options, ``--opt=value``, repeats,
    abbreviations, values that look like options) returns None and goes to argparse, so
    the behaviour is argparse's in every case."""
    values: dict[str, Path] = {}
    if len(argv) % 2:
        return None
    for option, value in zip(argv[::2], argv[1::2], strict=True):
        key = {"--data-dir": "data_dir", "--screenshot": "screenshot"}.get(option)
        if key is None or key in values or not value or value.startswith("-"):
            return None
        values[key] = Path(value)
    return argparse.Namespace(demo=False, join=None, data_dir=values.get("data_dir"),
                              policy=None, screenshot=values.get("screenshot"))


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] in TOOLS:
        module, function = TOOLS[argv[0]]
        return getattr(importlib.import_module(module), function)(argv[1:])
    args = _parse_common(argv) or build_parser().parse_args(argv)
    if args.policy is not None and not args.demo:
        # The machine policy is IT's; a command-line switch must not replace it outside a demo.
        print("safeconsult: --policy is only honoured with --demo; using the machine policy.",
              file=sys.stderr)
        args.policy = None
    if args.join is not None and not args.demo:
        print("safeconsult: --join needs --demo.", file=sys.stderr)
        return 2
    if args.screenshot is not None:
        os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    if args.demo:
        return _run_demo(args)
    paths = Paths.under(args.data_dir) if args.data_dir else Paths.for_user()
    return _run_client(args, load_policy(verify=_verify_signed_policy), paths)


def _run_client(args: argparse.Namespace, policy_load: PolicyLoad, paths: Paths, *,
                keys_in_memory: bool = False) -> int:
    early_log = _EarlyLog.install()  # the log file is set up after the first frame
    settings = Settings.load(paths.settings_file())
    return _run_gui(args, policy_load, paths, settings, keys_in_memory=keys_in_memory,
                    early_log=early_log)


def _verify_signed_policy(raw: bytes) -> tuple[Any, str]:
    """IT's signature over the machine policy, checked against the trusted keys installed
    beside it. Imported here, when a policy file exists, so a start without one loads no
    crypto library before the first frame. (The demo's --policy file is not signed.)"""
    from app.security.policy_signing import system_policy_verifier

    return system_policy_verifier()(raw)


def _run_demo(args: argparse.Namespace) -> int:
    """The embedded reference server (app.services.demo_server) for as long as the window."""
    from app.core.errors import SafeConsultError
    from app.services.demo_server import DemoServer

    try:
        if args.join is not None:
            demo = DemoServer.join(args.join)
        else:
            print("safeconsult: starting the demo server…", flush=True)
            demo = DemoServer.start(args.data_dir / "demo" if args.data_dir else None)
    except SafeConsultError as exc:
        print(f"safeconsult: {exc.user_message} ({exc})", file=sys.stderr)
        return 1
    with demo:  # stops the server it started (a joining client leaves it running)
        print(demo.credentials_text(), flush=True)
        # A --policy file gives the demo its settings (kiosk, lock time...); the address and
        # the CA are always the demo server's.
        base = load_policy(args.policy) if args.policy else PolicyLoad(Policy())
        policy = replace(base.policy, server_url=demo.url, pinned_ca_pem=demo.ca_pem,
                         source=f"demo ({args.policy or demo.root})")
        paths = Paths.under(args.data_dir) if args.data_dir else demo.client_paths()
        # The demo's device secrets stay in this process's memory, not in the OS keyring:
        # its data directory is a throw-away (removed when the demo ends), and so the demo
        # also runs on machines without a keyring. Outside the demo: OS keyring only.
        print("safeconsult: demo mode -- this client's device keys are kept in memory only "
              "(no OS keyring needed); its data is gone when the demo ends.", flush=True)
        return _run_client(args, PolicyLoad(policy, base.problem), paths, keys_in_memory=True)


def _run_gui(args: argparse.Namespace, policy_load: PolicyLoad, paths: Paths,
             settings: Settings, *, keys_in_memory: bool = False,
             early_log: _EarlyLog | None = None) -> int:
    # Until the first frame, no cyclic garbage collection: the objects made so far (modules,
    # classes, Qt's Python enums) all live as long as the process, and the collector's passes
    # over them cost ~6 ms of CPU before the window could appear. Back on right after it.
    collecting = gc.isenabled()
    gc.disable()
    try:
        window, app = _first_frame(args, policy_load, paths, settings,
                                   keys_in_memory=keys_in_memory)
    finally:
        if collecting:
            gc.enable()
    _after_first_frame(window, paths, early_log)
    if args.screenshot is not None:
        window.close()
        return 0

    from app.ui.asyncbridge import install_event_loop

    loop = install_event_loop(app)
    with loop:
        return loop.run_until_complete(_serve(app, window, policy_load.policy, paths,
                                              keys_in_memory=keys_in_memory))


def _first_frame(args: argparse.Namespace, policy_load: PolicyLoad, paths: Paths,
                 settings: Settings, *, keys_in_memory: bool) -> tuple[Any, QApplication]:
    """QApplication -> the sign-in window, shown and painted (and saved with --screenshot)."""
    from PySide6.QtCore import QEventLoop
    from PySide6.QtWidgets import QApplication

    app = QApplication.instance()
    # The Fusion style (app/ui/theme.py) as an argument of the application we create: the
    # same style as ``setStyle("Fusion")``, without wrapping a QStyle for Python (whose ~700
    # enum members PySide6 builds on first use: ~7 ms of CPU before the first frame).
    fusion_set = app is None
    if app is None:
        app = QApplication([*sys.argv[:1], "-style", "Fusion"])
    app.setApplicationName("SafeConsult")
    app.setApplicationVersion(__version__)
    app.setDesktopFileName("safeconsult")
    # We end the loop ourselves when the window closes (see _serve), after async clean-up.
    app.setQuitOnLastWindowClosed(False)
    window = _build_window(app, policy_load.policy, policy_load.problem, paths, settings,
                           keys_in_memory=keys_in_memory,
                           fusion_set=fusion_set)  # painted from the state's values
    if args.screenshot is None:
        window.login.set_ready(False)  # until _prepare_device has run
    window.show()
    # First frame first: the sign-in screen needs no event loop to appear, so it is painted
    # before asyncio and qasync are loaded (docs/performance.md, "Start-up (client)").
    # User input waits for the loop: a click on "Sign in" must find the loop there to run it.
    app.processEvents(QEventLoop.ProcessEventsFlag.ExcludeUserInputEvents)
    if args.screenshot is not None:
        _save_screenshot(window, args.screenshot)
    return window, app


async def _serve(app: QApplication, window: Any, policy: Policy, paths: Paths, *,
                 keys_in_memory: bool = False) -> int:
    import asyncio

    closed: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    app.lastWindowClosed.connect(lambda: closed.done() or closed.set_result(None))
    if not window.isVisible():  # closed before the loop started: nothing left to run
        closed.set_result(None)
    else:
        _start_auto_lock(app, window, policy)
        await _prepare_device(window, policy, paths, keys_in_memory=keys_in_memory)
    await closed
    await window.shutdown()
    return 0


async def _prepare_device(window: Any, policy: Policy, paths: Paths, *,
                          keys_in_memory: bool = False) -> None:
    """Before anyone signs in: finish an interrupted wipe; on a kiosk, clear what a crash left
    (app.services.startup). It runs after the first frame, in a worker thread (it may erase
    files and loads the key-store libraries); the sign-in form stays disabled until it is done,
    and stays disabled if it fails -- a wipe that cannot finish must not be signed past.

    With the keys in memory (the demo), what an earlier run left is ciphertext whose keys
    died with that process: it is removed the same way as a kiosk's leftovers.
    """
    import logging

    from PySide6.QtCore import QCoreApplication

    from app.ui.asyncbridge import run_in_worker, user_message

    def prepare() -> str:
        from app.services.startup import prepare_device

        keys = _keystore_for(policy, in_memory=keys_in_memory)
        if keys_in_memory and not policy.kiosk:
            from app.security.kiosk import cleanup_leftovers

            cleanup_leftovers(paths)
        return prepare_device(policy, paths, keys).notice

    try:
        notice = await run_in_worker(prepare)
    except Exception as exc:
        logging.getLogger(__name__).error(
            "device preparation failed", extra={"event": "startup_failed",
                                                "reason_code": type(exc).__name__})
        window.notifications.show_message(user_message(exc))
        return
    window.login.set_ready(True, QCoreApplication.translate("DeviceNotice", notice)
                          if notice else "")


def _after_first_frame(window: Any, paths: Paths, early_log: _EarlyLog | None) -> None:
    """What the first frame did not need, done before the event loop reads any input: the
    window's menu actions and shortcuts, its observers of AppState (this loads psygnal), the
    log file (logging.handlers) with what was logged so far, and the guard against the
    bindings' None leak (it may load ctypes)."""
    from app.core.logsafe import configure_logging
    from app.ui.pyside_guard import protect_none

    protect_none()  # PySide6 6.12.0 on CPython 3.11 leaks references to None (see there)
    _set_window_icon()
    window.finish_start_up()
    configure_logging(paths.logs)
    if early_log is not None:
        early_log.replay()


def _set_window_icon() -> None:
    """The application's icon (title bar, task switcher), set right after the first frame:
    the window manager picks up the change at once, and QIcon is one more Qt type (with its
    ~150-member enum) that the first frame does not need."""
    from PySide6.QtGui import QIcon
    from PySide6.QtWidgets import QApplication

    if ICON.exists():
        QApplication.setWindowIcon(QIcon(str(ICON)))


class _EarlyLog:
    """Holds log records in memory until the log file is configured after the first frame,
    then passes them to the configured (PHI-filtered) handlers. Memory only: nothing reaches
    a disk or the console unfiltered in between."""

    LIMIT = 1000

    def __init__(self) -> None:
        import logging

        class Buffer(logging.Handler):
            def __init__(self, records: list[logging.LogRecord]) -> None:
                super().__init__(logging.INFO)
                self.records = records

            def emit(self, record: logging.LogRecord) -> None:
                if len(self.records) < _EarlyLog.LIMIT:
                    self.records.append(record)

        self.records: list[logging.LogRecord] = []
        self.handler = Buffer(self.records)

    @classmethod
    def install(cls) -> _EarlyLog:
        import logging

        early = cls()
        root = logging.getLogger()
        root.addHandler(early.handler)
        root.setLevel(logging.INFO)  # what configure_logging will set
        return early

    def replay(self) -> None:
        import logging

        root = logging.getLogger()
        root.removeHandler(self.handler)
        for record in self.records:
            for handler in root.handlers:
                if record.levelno >= handler.level:
                    handler.handle(record)
        self.records.clear()


def _start_auto_lock(app: QApplication, window: Any, policy: Policy) -> None:
    """After the first frame (nobody can sign in before the loop runs): the idle lock and the
    OS lock / suspend signals. Both live as long as the window (their Qt parent)."""
    from app.config import effective_lock_timeout
    from app.core.autolock import LockConfig
    from app.ui.lock_controller import LockController
    from app.ui.os_lock import OsLockWatcher

    def config() -> LockConfig:
        return LockConfig(timeout_s=effective_lock_timeout(policy, window.settings),
                          warning_s=policy.lock_warning_s,
                          max_unlock_failures=policy.max_unlock_failures)

    controller = LockController(app, window.state, config, window.lock_now, parent=window)
    watcher = OsLockWatcher(controller.os_session_locked, controller.suspended, parent=window)
    watcher.start()
    window.auto_lock = controller


def _save_screenshot(window: Any, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if not window.grab().save(str(path), "PNG"):
        raise SystemExit(f"safeconsult: could not write {path}")
    # The start-up benchmark reads this line (wall-clock time of the first rendered frame).
    print(f"screenshot saved: {path} (rendered at {time.time():.6f}, "
          f"cpu {time.process_time():.6f})", flush=True)


def _build_window(app: QApplication, policy: Policy, policy_problem: str, paths: Paths,
                  settings: Settings, *, keys_in_memory: bool = False,
                  fusion_set: bool = False) -> Any:
    from app.services.app_state import AppState
    from app.ui.about_info import AboutInfo
    from app.ui.asyncbridge import TaskRunner
    from app.ui.i18n import LanguageSwitcher, pick_language, system_ui_languages
    from app.ui.main_window import MainWindow
    from app.ui.session_link import SessionLink
    from app.ui.theme import THEMES, ThemeController

    state = AppState(policy_problem=policy_problem)  # psygnal loads when first observed
    languages = LanguageSwitcher(app)
    languages.apply(pick_language(settings.language, system_ui_languages()))
    theme = ThemeController(app, fusion_set=fusion_set)
    theme.apply(settings.theme if settings.theme in THEMES else "system")

    def save_settings(new: Settings) -> None:
        # A shared cart keeps nothing of its users, preferences included.
        if not policy.kiosk:
            new.save(paths.settings_file())

    session = SessionLink(state, policy, paths,
                          keystore_for=_keystore_for(policy, in_memory=keys_in_memory))
    runner = TaskRunner(app)

    def configure_workspace(workspace: Any, user: Any) -> None:
        from app.ui.workspace_setup import configure_workspace as configure

        configure(workspace, user, runner=runner, session=session)

    return MainWindow(
        state=state, runner=runner, sign_in=session.sign_in,
        configure_workspace=configure_workspace,
        about=AboutInfo(version=__version__, policy=policy, policy_problem=policy_problem,
                        data_dir=paths.data),
        settings=settings, save_settings=save_settings, languages=languages, theme=theme,
        on_close=session.aclose, sign_out=session.sign_out,
        lock=session.lock, unlock=session.unlock, paint_first=True,
    )


def _keystore_for(policy: Policy, *, in_memory: bool = False) -> KeyStoreFor:
    """Where device secrets live: the OS keyring; in kiosk mode and in the demo, memory only.

    The libraries load at the first use (sign-in or device preparation), not here: this runs
    before the first frame. Without an OS keyring, ``KeyringKeyStore.open`` raises
    ``NoSecureKeyStorage`` with its clear message; there is no other fallback.
    """
    if policy.kiosk or in_memory:
        def memory(user: str, device_id: str) -> KeyStore:
            from app.security.kiosk import session_keys

            return session_keys(user, device_id)

        return memory

    def os_keyring(user: str, device_id: str) -> KeyStore:
        from app.security.keystore import KeyringKeyStore

        return KeyringKeyStore.open(user, device_id)

    return os_keyring


if __name__ == "__main__":
    sys.exit(main())

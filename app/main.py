"""GUI composition root: ``safeconsult [--demo] [--data-dir DIR] ...``.

Order: command line -> machine policy -> paths -> logging -> settings -> QApplication with
the qasync loop -> services -> main window (sign-in screen first).

Start-up stays light on purpose: this module imports only the standard library and
``app.config`` at the top; Qt comes in when a window is really needed (``--version`` and
``--help`` never load it), and heavy libraries (aiortc, pydicom, cv2, vodozemac, sqlcipher3)
are imported by the features that use them, after the window is up. tests/ui/test_cli.py
checks this.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import os
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from app import __version__
from app.config import Paths, Policy, PolicyLoad, Settings, load_policy

if TYPE_CHECKING:
    from PySide6.QtWidgets import QApplication

    from app.services.app_state import AppState

ICON = Path(__file__).resolve().parent.parent / "resources" / "icons" / "safeconsult.svg"
DEMO_MODULE = "app.services.demo_server"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="safeconsult",
        description="SafeConsult: secure clinical consults (encrypted video, chat and images).",
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


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.policy is not None and not args.demo:
        # The machine policy is IT's; a command-line switch must not replace it outside a demo.
        print("safeconsult: --policy is only honoured with --demo; using the machine policy.",
              file=sys.stderr)
        args.policy = None
    if args.join is not None and not args.demo:
        print("safeconsult: --join needs --demo.", file=sys.stderr)
        return 2
    if args.demo and importlib.util.find_spec(DEMO_MODULE) is None:
        print("safeconsult: the demo server (app/services/demo_server.py) is not part of this "
              "build yet; start the client without --demo.", file=sys.stderr)
        return 2
    if args.screenshot is not None:
        os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

    policy_load = load_policy(args.policy)
    paths = Paths.under(args.data_dir) if args.data_dir else Paths.for_user()
    from app.core.logsafe import configure_logging

    configure_logging(paths.logs)
    settings = Settings.load(paths.settings_file())
    return _run_gui(args, policy_load, paths, settings)


def _run_gui(args: argparse.Namespace, policy_load: PolicyLoad, paths: Paths,
             settings: Settings) -> int:
    from PySide6.QtGui import QIcon
    from PySide6.QtWidgets import QApplication

    app = QApplication.instance() or QApplication(sys.argv[:1])
    app.setApplicationName("SafeConsult")
    app.setApplicationVersion(__version__)
    app.setDesktopFileName("safeconsult")
    if ICON.exists():
        app.setWindowIcon(QIcon(str(ICON)))
    # We end the loop ourselves when the window closes (see _serve), after async clean-up.
    app.setQuitOnLastWindowClosed(False)
    window = None
    if not args.demo:
        # First frame first: the sign-in screen needs no event loop to appear, so it is painted
        # before asyncio and qasync are loaded (docs/performance.md, "Start-up (client)").
        window = _build_window(app, policy_load.policy, policy_load.problem, paths, settings)
        window.show()
        app.processEvents()
        if args.screenshot is not None:
            _save_screenshot(window, args.screenshot)
            window.close()
            return 0

    from app.ui.asyncbridge import install_event_loop

    loop = install_event_loop(app)
    with loop:
        return loop.run_until_complete(
            _serve(app, args, policy_load, paths, settings, window=window))


async def _serve(app: QApplication, args: argparse.Namespace, policy_load: PolicyLoad,
                 paths: Paths, settings: Settings, *, window: Any = None) -> int:
    import asyncio

    async with contextlib.AsyncExitStack() as stack:
        if window is None:
            # --demo: the window needs the embedded server's address and CA first.
            policy = await _start_demo(stack, args, paths, policy_load.policy)
            window = _build_window(app, policy, policy_load.problem, paths, settings)
            window.show()
        closed: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        app.lastWindowClosed.connect(lambda: closed.done() or closed.set_result(None))
        if not window.isVisible():  # closed before the loop started: nothing left to run
            closed.set_result(None)
        if args.screenshot is not None:
            await asyncio.sleep(0)  # one turn of the Qt loop: layout and first paint
            _save_screenshot(window, args.screenshot)
            window.close()
        await closed
    return 0


def _save_screenshot(window: Any, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if not window.grab().save(str(path), "PNG"):
        raise SystemExit(f"safeconsult: could not write {path}")
    # The start-up benchmark reads this line (wall-clock time of the first rendered frame).
    print(f"screenshot saved: {path} (rendered at {time.time():.6f})", flush=True)


def _build_window(app: QApplication, policy: Policy, policy_problem: str, paths: Paths,
                  settings: Settings) -> Any:
    from app.services.app_state import AppState
    from app.ui.about_info import AboutInfo
    from app.ui.asyncbridge import TaskRunner
    from app.ui.i18n import LanguageSwitcher, pick_language, system_ui_languages
    from app.ui.main_window import MainWindow
    from app.ui.theme import THEMES, ThemeController

    state = AppState(policy_problem=policy_problem)
    languages = LanguageSwitcher(app)
    languages.apply(pick_language(settings.language, system_ui_languages()))
    theme = ThemeController(app)
    theme.apply(settings.theme if settings.theme in THEMES else "system")

    def save_settings(new: Settings) -> None:
        # A shared cart keeps nothing of its users, preferences included.
        if not policy.kiosk:
            new.save(paths.settings_file())

    runner = TaskRunner(app)
    return MainWindow(
        state=state, runner=runner, sign_in=_sign_in_hook(state, policy, paths),
        about=AboutInfo(version=__version__, policy=policy, policy_problem=policy_problem,
                        data_dir=paths.data),
        settings=settings, save_settings=save_settings, languages=languages, theme=theme,
    )


# ---- HOOK: sign-in ---------------------------------------------------------------------------
# The session service (password + TOTP + device proof) is being written elsewhere. Replace this
# with the service's ``sign_in`` coroutine; it must set ``state.user`` (and ``state.device``,
# ``state.connection``) and raise SafeConsultError with a user message on failure.
def _sign_in_hook(state: AppState, policy: Policy, paths: Paths) -> Any:
    from app.core.errors import SafeConsultError

    async def sign_in(username: str, password: str, totp: str) -> None:
        raise SafeConsultError(
            "session service not wired", user_message="Sign-in is not available in this build yet.",
        )

    return sign_in


# ---- HOOK: --demo ----------------------------------------------------------------------------
# app/services/demo_server.py (another engineer's) provides
#     start_demo(root: Path, *, join: Path | None) -> async context manager
# yielding an object with .url, .ca_pem and .users. The server lives as long as the window.
async def _start_demo(stack: contextlib.AsyncExitStack, args: argparse.Namespace, paths: Paths,
                      policy: Policy) -> Policy:
    import tempfile

    from app.services.demo_server import start_demo  # type: ignore[import-not-found]

    root = args.data_dir or Path(tempfile.mkdtemp(prefix="safeconsult-demo-"))
    demo = await stack.enter_async_context(start_demo(root, join=args.join))
    print(f"safeconsult: demo server at {demo.url}", flush=True)
    return replace(policy, server_url=demo.url, pinned_ca_pem=demo.ca_pem,
                   source="demo" if policy.source == "defaults" else policy.source)


if __name__ == "__main__":
    sys.exit(main())

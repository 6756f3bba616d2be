"""The demo's embedded reference server: a real server process on localhost with a fresh CA.

The client never imports the server (they meet only in the protocol): the demo runs
``python -m server_stub`` as a child process in a temporary directory, waits for its ready
file, seeds one demo user per role through the admin CLI, and gives the client a policy that
pins the fresh CA. ``demo.json`` in that directory lets a second client join the same server.
Everything lives in the directory, which is removed when the demo that created it ends.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from app.config import Paths, Policy
from app.core.errors import SafeConsultError


class DemoError(SafeConsultError):
    user_message = "The demo server could not be started. See the terminal for details."


@dataclass(frozen=True)
class DemoUser:
    username: str
    role: str
    password: str
    totp_secret: str
    otpauth_uri: str = ""


@dataclass
class DemoServer:
    root: Path
    url: str
    ca_pem: str
    users: list[DemoUser]
    process: subprocess.Popen | None = field(default=None, repr=False)
    owns_root: bool = False

    # -- lifecycle ------------------------------------------------------------------------

    @classmethod
    def start(cls, root: Path | None = None, *, timeout_s: float = 30.0) -> DemoServer:
        owns = root is None
        root = Path(tempfile.mkdtemp(prefix="safeconsult-demo-")) if root is None else root
        root.mkdir(parents=True, exist_ok=True, mode=0o700)
        server_dir, ready = root / "server", root / "server-ready.json"
        ready.unlink(missing_ok=True)
        log = open(root / "server.log", "ab")  # noqa: SIM115 -- handed to the child process
        process = subprocess.Popen(
            [sys.executable, "-m", "server_stub", "serve", "--data-dir", str(server_dir),
             "--port", "0", "--ready-file", str(ready), "--no-device-approval"],
            stdout=log, stderr=subprocess.STDOUT, env=_child_env(),
        )
        log.close()
        try:
            info = _wait_for_ready(ready, process, timeout_s)
            users = _seed_users(server_dir)
            demo = cls(root, info["url"], (server_dir / "tls" / "ca.pem").read_text(), users,
                       process, owns)
            demo._write_manifest()
            return demo
        except BaseException:
            process.kill()
            process.wait(timeout=10)
            if owns:
                shutil.rmtree(root, ignore_errors=True)
            raise

    @classmethod
    def join(cls, root: Path) -> DemoServer:
        """Attach to a demo another client started (``safeconsult --demo --join DIR``)."""
        try:
            manifest = json.loads((root / "demo.json").read_text())
            return cls(root, manifest["url"], manifest["ca_pem"],
                       [DemoUser(**u) for u in manifest["users"]])
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise DemoError(f"no running demo in {root} ({exc.__class__.__name__})",
                            user_message=f"No running demo found in {root}.") from None

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        if self.owns_root:
            shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self) -> DemoServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- what the client needs ------------------------------------------------------------

    def policy(self) -> Policy:
        # The demo shows what IT may switch on: a PIN for quick unlocks is offered after
        # sign-in (skippable); everything else stays at the safe defaults.
        return Policy(server_url=self.url, pinned_ca_pem=self.ca_pem, allow_pin_unlock=True,
                      source=f"demo ({self.root})")

    def client_paths(self, name: str | None = None) -> Paths:
        """A separate data directory per client, so two clients are two devices."""
        if name is None:
            clients = self.root / "clients"
            clients.mkdir(parents=True, exist_ok=True)
            name = f"client-{len(list(clients.iterdir())) + 1}"
        return Paths.under(self.root / "clients" / name)

    def credentials_text(self) -> str:
        lines = [f"SafeConsult demo server: {self.url}", "Demo users (password, TOTP secret):"]
        for user in self.users:
            lines.append(f"  {user.username:<12} {user.role:<11} {user.password}  "
                         f"TOTP {user.totp_secret}")
        lines.append("Current TOTP code: oathtool --totp -b SECRET  (or any authenticator app)")
        lines.append(f"Second client on this machine: safeconsult --demo --join {self.root}")
        return "\n".join(lines)

    def _write_manifest(self) -> None:
        manifest = {"url": self.url, "ca_pem": self.ca_pem,
                    "users": [asdict(u) for u in self.users]}
        path = self.root / "demo.json"
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            json.dump(manifest, f)


def _child_env() -> dict[str, str]:
    env = dict(os.environ)
    # The child must import server_stub from the same tree as we run from.
    src = str(Path(__file__).resolve().parents[2])
    env["PYTHONPATH"] = src + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    return env


def _wait_for_ready(ready: Path, process: subprocess.Popen, timeout_s: float) -> dict:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise DemoError(f"server exited with status {process.returncode}")
        try:
            return json.loads(ready.read_text())
        except (FileNotFoundError, ValueError):
            time.sleep(0.05)
    raise DemoError(f"server not ready after {timeout_s:.0f} s")


def _seed_users(server_dir: Path) -> list[DemoUser]:
    result = subprocess.run(
        [sys.executable, "-m", "server_stub", "admin", "--data-dir", str(server_dir),
         "seed-demo", "--json"],
        capture_output=True, text=True, timeout=60, env=_child_env(), check=False,
    )
    if result.returncode != 0:
        raise DemoError(f"seeding demo users failed: {result.stderr.strip()[-500:]}")
    try:
        return [DemoUser(**{k: u[k] for k in ("username", "role", "password", "totp_secret")},
                         otpauth_uri=u.get("otpauth_uri", "")) for u in json.loads(result.stdout)]
    except (ValueError, KeyError, TypeError) as exc:
        raise DemoError(f"unexpected seed output ({exc.__class__.__name__})") from None

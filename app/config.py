"""Machine policy, user settings and paths.

*Policy* is IT's: read-only, loaded from the machine-wide location, never overridden by a
user. *Settings* are the user's own preferences (language, theme, a shorter lock time).
Where both speak to the same thing, the stricter wins (see :func:`effective_lock_timeout`).

The policy's signature check (issue: signed machine policy) plugs into :func:`load_policy`
through its ``verify`` callable; until then a file is accepted as read and reported as
``unsigned`` in :attr:`Policy.source`.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from app.core.errors import PolicyError

APP_NAME = "SafeConsult"
CRYPTO_SUITES = ("aes-256-gcm", "sm4-gcm")


@dataclass(frozen=True)
class Policy:
    """What hospital IT decides for this machine. Defaults are the safe choice."""

    server_url: str = "https://127.0.0.1:8443"
    pinned_ca_pem: str = ""  # PEM of the CA the server's certificate must chain to
    kiosk: bool = False  # shared device: logout-on-close, cache key in memory only
    lock_timeout_s: int = 300  # idle time before auto-lock
    lock_warning_s: int = 30  # warning shown this long before the lock
    max_unlock_failures: int = 5  # failed unlocks that end the session
    allow_pin_unlock: bool = False  # a PIN set after sign-in may unlock (password still works)
    pin_min_length: int = 6  # digits, 4..12 (app/core/pin.py refuses trivial PINs too)
    wipe_poll_interval_s: int = 60
    offline_grace_s: int = 8 * 3600  # unreachable this long: lock the cache
    offline_wipe_s: int = 72 * 3600  # unreachable this long: wipe
    retention_days: int = 30  # local chat/file cache
    recall_window_minutes: int = 15  # a chat message may be recalled this long after sending
    # The viewer's Snapshot (watermarked, audited; to the clipboard or a consult room).
    allow_snapshot: bool = True
    crypto_suite: str = "aes-256-gcm"
    # SQLCipher's cipher_memory_security: wipes its buffers on free, at a 15-25x cost per
    # statement (docs/device-protection.md). Decrypted text also lives in ordinary Python
    # strings, so the gain is small; IT may still choose it.
    cache_memory_security: bool = False
    # Where this policy came from, for the About dialog and the audit: "defaults" or a path,
    # plus whether a signature was checked.
    source: str = field(default="defaults", compare=False)
    signer: str = field(default="", compare=False)

    def __post_init__(self) -> None:
        problems = []
        if not self.server_url.startswith("https://"):
            problems.append("server_url must be https")
        if not 30 <= self.lock_timeout_s <= 3600:
            problems.append("lock_timeout_s must be between 30 and 3600")
        if not 0 <= self.lock_warning_s < self.lock_timeout_s:
            problems.append("lock_warning_s must be shorter than lock_timeout_s")
        if not 1 <= self.max_unlock_failures <= 20:
            problems.append("max_unlock_failures must be between 1 and 20")
        if not 4 <= self.pin_min_length <= 12:
            problems.append("pin_min_length must be between 4 and 12")
        if not 5 <= self.wipe_poll_interval_s <= 3600:
            problems.append("wipe_poll_interval_s must be between 5 and 3600")
        if not 0 < self.offline_grace_s <= self.offline_wipe_s:
            problems.append("offline_grace_s must be positive and not above offline_wipe_s")
        if not 1 <= self.retention_days <= 3650:
            problems.append("retention_days must be between 1 and 3650")
        if not 0 <= self.recall_window_minutes <= 7 * 24 * 60:
            problems.append("recall_window_minutes must be between 0 and 10080")
        if self.crypto_suite not in CRYPTO_SUITES:
            problems.append(f"crypto_suite must be one of {', '.join(CRYPTO_SUITES)}")
        if problems:
            raise PolicyError("; ".join(problems))

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any], *, source: str, signer: str = "") -> Policy:
        known = {f.name: f for f in fields(cls) if f.name not in ("source", "signer")}
        unknown = sorted(set(data) - set(known))
        if unknown:
            raise PolicyError(f"unknown policy settings: {', '.join(unknown)}")
        values: dict[str, Any] = {}
        for name, value in data.items():
            expected = type(getattr(cls(), name))
            if (expected is int and isinstance(value, bool)) or not isinstance(value, expected):
                raise PolicyError(f"policy setting {name} must be {expected.__name__}")
            values[name] = value
        return cls(**values, source=source, signer=signer)


def system_policy_path() -> Path:
    """The machine-wide policy location IT deploys to (see docs/admin-guide.md)."""
    if sys.platform.startswith("win"):
        base = Path(os.environ.get("PROGRAMDATA", r"C:\ProgramData"))
        return base / APP_NAME / "policy.json"
    if sys.platform == "darwin":
        return Path("/Library/Application Support") / APP_NAME / "policy.json"
    return Path("/etc/safeconsult/policy.json")


PolicyVerifier = Callable[[bytes], tuple[Mapping[str, Any], str]]
"""Takes the file's bytes, returns (settings, signer) or raises PolicyError."""


def _unsigned(raw: bytes) -> tuple[Mapping[str, Any], str]:
    try:
        data = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise PolicyError(f"policy is not valid JSON ({exc.__class__.__name__})") from None
    if not isinstance(data, dict):
        raise PolicyError("policy must be a JSON object")
    return data, ""


@dataclass(frozen=True)
class PolicyLoad:
    policy: Policy
    problem: str = ""  # non-empty when the file was refused and defaults are in force


def load_policy(
    path: Path | None = None, *, verify: PolicyVerifier = _unsigned,
) -> PolicyLoad:
    """Load the policy from ``path`` (default: the system location).

    A missing file means defaults. A file that cannot be read, parsed, verified or validated
    also means defaults -- the safe choice -- and the reason is returned for the UI and audit.
    """
    path = path or system_policy_path()
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return PolicyLoad(Policy())
    except OSError as exc:
        return PolicyLoad(Policy(), f"cannot read {path}: {exc.strerror}")
    try:
        data, signer = verify(raw)
        return PolicyLoad(Policy.from_mapping(data, source=str(path), signer=signer))
    except PolicyError as exc:
        return PolicyLoad(Policy(), f"{path}: {exc}")


@dataclass(frozen=True)
class Settings:
    """The user's own preferences. Stored per user; never weaker than policy."""

    language: str = ""  # "" follows the OS locale; "en" or "zh_CN"
    theme: str = "system"  # "system", "light" or "dark"
    lock_timeout_s: int | None = None  # the user may choose a shorter idle lock

    @classmethod
    def load(cls, path: Path) -> Settings:
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return cls()
        if not isinstance(data, dict):
            return cls()
        known = {f.name for f in fields(cls)}
        settings = cls()
        for key, value in data.items():
            if key in known:
                try:
                    settings = replace(settings, **{key: value})
                except TypeError:
                    continue
        return settings

    def save(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps({f.name: getattr(self, f.name) for f in fields(self)}))
        os.replace(tmp, path)


def effective_lock_timeout(policy: Policy, settings: Settings) -> int:
    """The user may lock sooner than policy says, never later."""
    if settings.lock_timeout_s and settings.lock_timeout_s > 0:
        return max(30, min(policy.lock_timeout_s, settings.lock_timeout_s))
    return policy.lock_timeout_s


@dataclass(frozen=True)
class Paths:
    """Where this client keeps its files. ``data`` holds only encrypted content."""

    data: Path
    config: Path
    logs: Path

    @classmethod
    def for_user(cls) -> Paths:
        import platformdirs

        return cls(
            data=Path(platformdirs.user_data_dir(APP_NAME, appauthor=False)),
            config=Path(platformdirs.user_config_dir(APP_NAME, appauthor=False)),
            logs=Path(platformdirs.user_log_dir(APP_NAME, appauthor=False)),
        )

    @classmethod
    def under(cls, root: Path) -> Paths:
        """All paths below one directory (demo, tests, a second client on one machine)."""
        return cls(data=root / "data", config=root / "config", logs=root / "logs")

    def settings_file(self) -> Path:
        return self.config / "settings.json"

"""Unlock PIN: which PINs are acceptable, how one is kept, how many guesses it gets.

Pure and Qt-free; the session (app/services/session.py) owns one :class:`PinVerifier` per
signed-in session, in memory only, and the lock screen offers PIN entry while
:class:`PinGate` says so.

* **Kept.** Never the digits: ``scrypt(pin, random 16-byte salt, N=2^15, r=8, p=1)``, 32 MiB
  and ~0.1-0.2 s per guess, compared in constant time. A PIN is a 10^6 space, so a memory
  image of the running process could still be brute-forced offline in a few core-days; the
  KDF makes that slow, it does not make it impossible. (That same image holds the cache key
  anyway: the KDF protects the PIN -- which people reuse for cards and phones -- not the
  session.) Nothing of it is ever written to disk, in kiosk mode or not.
* **Guesses.** :data:`PIN_MAX_FAILURES` wrong PINs in one session and the PIN is dropped: from
  then on only the password unlocks. The PIN failures are *not* reset by a later success:
  an attacker at an unattended workstation gets at most that many guesses per session, not
  that many per lock. Each failure also counts towards the policy's ``max_unlock_failures``,
  which ends the session as a wrong password does.
* **Acceptable.** Digits only, ``min_length`` (policy) to :data:`PIN_MAX_LENGTH`; not one
  digit repeated (000000), not a run up or down (123456, 987654, 890123), not a short block
  repeated (121212, 123123, 112112), not one of the PINs people choose most often.
"""

from __future__ import annotations

import enum
import hashlib
import hmac
import itertools
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from app.core.errors import SafeConsultError

PIN_MAX_LENGTH = 12
PIN_MIN_LENGTH_FLOOR = 4  # the least a policy may ask for
PIN_MAX_FAILURES = 3  # wrong PINs per session before only the password unlocks

# scrypt parameters: 128 * r * n bytes = 32 MiB per derivation.
SCRYPT_N = 2**15
SCRYPT_R = 8
SCRYPT_P = 1
_SCRYPT_MAXMEM = 64 * 2**20

# Most chosen PINs that the rules below do not already catch (published PIN-frequency
# studies: 4- and 6-digit; keypad shapes; dates are not refused, they are too many to list).
COMMON_PINS = frozenset({
    "1212", "1004", "2000", "6969", "1122", "1313", "4321", "2001", "1010", "2580", "0852",
    "1470", "0741", "1379", "1397", "7777",
    "112233", "121212", "123321", "654321", "666666", "696969", "123654", "159753", "147258",
    "258369", "789456", "456123", "520520", "520131", "131420", "102030", "101010", "100200",
    "147852", "159357", "753951", "852456", "741852", "963852", "123789", "987123", "222333",
    "111222", "000111", "110110", "123000", "000123", "147369", "369258", "112358", "314159",
})


class PinProblem(enum.StrEnum):
    NOT_DIGITS = "pin_not_digits"
    TOO_SHORT = "pin_too_short"
    TOO_LONG = "pin_too_long"
    TRIVIAL = "pin_trivial"


# English for the log and for any caller that shows ``user_message`` as is; the UI shows its
# own translated sentence per code (app/ui/lock_screen.py).
PIN_MESSAGES: dict[str, str] = {
    PinProblem.NOT_DIGITS: "Use digits only.",
    PinProblem.TOO_SHORT: "The PIN is too short.",
    PinProblem.TOO_LONG: "The PIN is too long.",
    PinProblem.TRIVIAL: "This PIN is too easy to guess. Avoid repeated digits and runs such "
                        "as 123456.",
    "pin_not_allowed": "The machine policy does not allow unlocking with a PIN.",
    "pin_unavailable": "A PIN can be set only while you are signed in and unlocked.",
}


class PinRefused(SafeConsultError):
    """A PIN could not be set; ``code`` is a :class:`PinProblem` value, ``pin_not_allowed``
    or ``pin_unavailable``."""

    def __init__(self, code: str) -> None:
        super().__init__(code, user_message=PIN_MESSAGES[code])
        self.code = code


@dataclass(frozen=True)
class PinOffer:
    """What a successful sign-in hands the UI when policy allows a PIN: the policy's minimum
    length and the session's ``set_pin`` (raises :class:`PinRefused`)."""

    min_length: int
    set_pin: Callable[[str], Awaitable[None]]


def pin_problem(pin: str, min_length: int) -> PinProblem | None:
    """Why ``pin`` may not be set (None: it may). ASCII digits only: a full-width or Arabic-
    Indic digit would be a PIN the user cannot type again on another keyboard layout."""
    if not pin or not all("0" <= c <= "9" for c in pin):
        return PinProblem.NOT_DIGITS
    if len(pin) < min_length:
        return PinProblem.TOO_SHORT
    if len(pin) > PIN_MAX_LENGTH:
        return PinProblem.TOO_LONG
    if is_trivial(pin):
        return PinProblem.TRIVIAL
    return None


def is_trivial(pin: str) -> bool:
    """One digit repeated, a run up or down (wrapping 9->0), a block of 1-3 digits repeated,
    or a PIN from :data:`COMMON_PINS`."""
    digits = [int(c) for c in pin]
    steps = {(b - a) % 10 for a, b in itertools.pairwise(digits)}
    if len(steps) <= 1 and steps <= {0, 1, 9}:
        return True
    for period in (1, 2, 3):
        if len(pin) >= 2 * period and len(pin) % period == 0 \
                and pin == pin[:period] * (len(pin) // period):
            return True
    # 112233 / 111222: pairs or triples of a run
    for size in (2, 3):
        if len(pin) % size == 0:
            blocks = [pin[i:i + size] for i in range(0, len(pin), size)]
            if all(len(set(b)) == 1 for b in blocks) and is_trivial("".join(b[0] for b in blocks)):
                return True
    return pin in COMMON_PINS


def derive(pin: str, salt: bytes) -> bytes:
    """The memory-hard derivation (slow on purpose: run it off the GUI thread)."""
    return hashlib.scrypt(pin.encode("ascii"), salt=salt, n=SCRYPT_N, r=SCRYPT_R, p=SCRYPT_P,
                          maxmem=_SCRYPT_MAXMEM, dklen=32)


@dataclass(eq=False, repr=False)
class PinVerifier:
    """A salt and the PIN's derived key; never the PIN. ``repr`` shows neither."""

    salt: bytes
    key: bytes

    @classmethod
    def create(cls, pin: str) -> PinVerifier:
        salt = secrets.token_bytes(16)
        return cls(salt, derive(pin, salt))

    def matches(self, pin: str) -> bool:
        if not pin or not all("0" <= c <= "9" for c in pin) or len(pin) > PIN_MAX_LENGTH:
            # Still a full derivation: a malformed guess takes as long as a wrong one.
            derive("0", self.salt)
            return False
        return hmac.compare_digest(derive(pin, self.salt), self.key)


class PinAttempt(enum.Enum):
    UNLOCKED = "unlocked"
    WRONG = "wrong"  # the PIN stays offered
    WRONG_PIN_DROPPED = "wrong_pin_dropped"  # too many wrong PINs: password only from now on


@dataclass(repr=False)
class PinGate:
    """The session's PIN: set, tried, dropped. ``max_failures`` wrong PINs drop it."""

    max_failures: int = PIN_MAX_FAILURES
    verifier: PinVerifier | None = None
    failures: int = 0
    # Locks that need the password whatever the PIN (e.g. the offline guard's).
    password_only: bool = field(default=False)

    @property
    def is_set(self) -> bool:
        return self.verifier is not None

    @property
    def offered(self) -> bool:
        return self.verifier is not None and not self.password_only

    def set(self, verifier: PinVerifier) -> None:
        # The failure count stays: setting a new PIN does not buy new guesses.
        if self.failures >= self.max_failures:
            raise RuntimeError("the PIN was dropped after too many wrong PINs")
        self.verifier = verifier

    def record(self, matched: bool) -> PinAttempt:
        """Count one tried PIN (``matched`` from :meth:`PinVerifier.matches`, which is slow:
        the caller runs it off the event loop and records the result on it)."""
        if self.verifier is None:
            raise RuntimeError("no PIN is set")
        if matched:
            return PinAttempt.UNLOCKED
        self.failures += 1
        if self.failures >= self.max_failures:
            self.clear()
            return PinAttempt.WRONG_PIN_DROPPED
        return PinAttempt.WRONG

    def clear(self) -> None:
        self.verifier = None

"""The unlock PIN's rules, its memory-hard verifier and the guess limit (app/core/pin.py)."""

from __future__ import annotations

import pytest

from app.config import Policy
from app.core.errors import PolicyError
from app.core.pin import (
    PIN_MAX_FAILURES,
    SCRYPT_N,
    SCRYPT_R,
    PinAttempt,
    PinGate,
    PinProblem,
    PinVerifier,
    derive,
    pin_problem,
)


@pytest.mark.parametrize("pin", [
    "000000", "999999", "123456", "654321", "890123", "321098", "121212", "123123",
    "112233", "111222", "110110", "520520", "147258", "159753", "1234567890", "000000000000",
])
def test_trivial_pins_are_refused(pin):
    assert pin_problem(pin, 6) is PinProblem.TRIVIAL


@pytest.mark.parametrize(("pin", "problem"), [
    ("", PinProblem.NOT_DIGITS), ("48 2913", PinProblem.NOT_DIGITS),
    ("48a913", PinProblem.NOT_DIGITS), ("４８２９１３", PinProblem.NOT_DIGITS),  # full-width
    ("٤٨٢٩١٣", PinProblem.NOT_DIGITS),  # Arabic-Indic digits
    ("48291", PinProblem.TOO_SHORT), ("4829137560123", PinProblem.TOO_LONG),
])
def test_malformed_pins_are_refused(pin, problem):
    assert pin_problem(pin, 6) is problem


@pytest.mark.parametrize("pin", ["482913", "739204", "5082716", "930571846213"])
def test_ordinary_pins_are_accepted(pin):
    assert pin_problem(pin, 6) is None


def test_minimum_length_comes_from_the_policy():
    assert pin_problem("9370", 4) is None
    assert pin_problem("9370", 6) is PinProblem.TOO_SHORT
    assert Policy().pin_min_length == 6
    for bad in (3, 13):
        with pytest.raises(PolicyError, match="pin_min_length"):
            Policy(pin_min_length=bad)
    with pytest.raises(PolicyError):
        Policy.from_mapping({"pin_min_length": "6"}, source="test")
    assert Policy.from_mapping({"allow_pin_unlock": True, "pin_min_length": 8},
                               source="test").pin_min_length == 8


def test_verifier_keeps_no_pin_and_matches_only_the_pin():
    verifier = PinVerifier.create("482913")
    assert verifier.matches("482913")
    assert not verifier.matches("482914")
    assert not verifier.matches("")
    assert not verifier.matches("48291３")  # not ASCII: refused, not an exception
    # A random salt: the same PIN gives another key each time it is set.
    other = PinVerifier.create("482913")
    assert other.salt != verifier.salt and other.key != verifier.key
    # Nothing of the PIN in what is kept or shown.
    for blob in (verifier.salt, verifier.key, repr(verifier).encode()):
        assert b"482913" not in blob
    assert "482913" not in repr(verifier) and verifier.key.hex() not in repr(verifier)


def test_derivation_is_scrypt_with_memory_hard_parameters():
    import hashlib

    salt = bytes(16)
    assert derive("482913", salt) == hashlib.scrypt(
        b"482913", salt=salt, n=2**15, r=8, p=1, maxmem=64 * 2**20, dklen=32)
    assert 128 * SCRYPT_R * SCRYPT_N >= 32 * 2**20  # at least 32 MiB per guess


def test_gate_drops_the_pin_after_the_limit_and_a_success_buys_no_new_guesses():
    gate = PinGate()
    assert not gate.offered
    gate.set(PinVerifier(b"s" * 16, b"k" * 32))
    assert gate.offered
    assert gate.record(False) is PinAttempt.WRONG
    assert gate.record(True) is PinAttempt.UNLOCKED
    assert gate.failures == 1  # not reset by the success
    for _ in range(PIN_MAX_FAILURES - 2):
        assert gate.record(False) is PinAttempt.WRONG
    assert gate.record(False) is PinAttempt.WRONG_PIN_DROPPED
    assert not gate.offered and not gate.is_set and gate.verifier is None
    with pytest.raises(RuntimeError):
        gate.record(True)
    with pytest.raises(RuntimeError):  # setting a new PIN does not reset the count
        gate.set(PinVerifier(b"s" * 16, b"k" * 32))


def test_a_password_only_lock_hides_the_pin_without_dropping_it():
    gate = PinGate()
    gate.set(PinVerifier(b"s" * 16, b"k" * 32))
    gate.password_only = True
    assert gate.is_set and not gate.offered

"""``safeconsult --self-test`` from source: every check passes here, and a missing library
is named with a non-zero exit (what a bundle that lost a dependency would show)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from app.config import system_policy_path

ROOT = Path(__file__).resolve().parents[2]


def run(code: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen"}
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120, cwd=ROOT, env=env)


def test_self_test_passes_and_prints_one_line_per_check():
    result = run("from app.main import main; raise SystemExit(main(['--self-test']))")
    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    from app.selftest import CHECKS

    for name, _ in CHECKS:
        assert any(line.startswith(f"ok   {name}: ") for line in lines), result.stdout
    assert lines[-1] == "self-test passed"


def test_a_missing_library_fails_its_check_by_name():
    # As if the bundle had lost vodozemac: the import fails, that check fails, the rest run.
    result = run("import sys; sys.modules['vodozemac'] = None\n"
                 "from app.main import main; raise SystemExit(main(['--self-test', "
                 "'vodozemac', 'cryptography']))")
    assert result.returncode == 1
    assert "FAIL vodozemac: ModuleNotFoundError" in result.stdout
    assert "ok   cryptography:" in result.stdout
    assert result.stdout.splitlines()[-1] == "self-test FAILED: vodozemac"


def test_an_unknown_check_is_refused():
    result = run("from app.main import main; raise SystemExit(main(['--self-test', 'nope']))")
    assert result.returncode == 2
    assert "unknown check(s): nope" in result.stdout


@pytest.mark.skipif(system_policy_path().exists(), reason="this machine has a machine policy")
def test_update_subcommand_needs_a_pinned_server(tmp_path):
    # This machine has no signed policy: the defaults pin no CA, so there is no check at all.
    result = run("from app.main import main; raise SystemExit(main(['update', '--check', "
                 f"'--data-dir', {str(tmp_path)!r}]))")
    assert result.returncode == 1
    assert "pins no server CA" in result.stderr

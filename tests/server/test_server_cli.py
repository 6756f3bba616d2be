"""``python -m server_stub`` explains itself and refuses bad usage with exit code 2."""

import subprocess
import sys


def server_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "server_stub", *args],
                          capture_output=True, text=True, timeout=60)


def test_help_lists_serve_and_admin():
    result = server_cli("--help")
    assert result.returncode == 0
    assert "serve" in result.stdout and "admin" in result.stdout


def test_version():
    result = server_cli("--version")
    assert result.returncode == 0
    assert result.stdout.strip().endswith("0.1.0")


def test_serve_needs_a_data_dir():
    result = server_cli("serve")
    assert result.returncode == 2
    assert "--data-dir" in result.stderr


def test_serve_help_names_its_options():
    result = server_cli("serve", "--help")
    assert result.returncode == 0
    for option in ("--data-dir", "--host", "--port", "--ready-file"):
        assert option in result.stdout

"""The Qt-free command-line peer talks to a real server, and never loads Qt."""

import json
import subprocess
import sys

from cryptography.hazmat.primitives import serialization

from server_stub.tls import generate_ca


def headless(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "app.headless", *args],
                          capture_output=True, text=True, timeout=60)


def test_health_over_pinned_tls(server):
    result = headless("--server", server.url, "--ca", str(server.ca_path), "--json", "health")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["state"] == "online"


def test_wrong_ca_is_reported_as_certificate_error(server, tmp_path):
    other, _ = generate_ca("Impostor CA")
    ca = tmp_path / "other.pem"
    ca.write_bytes(other.public_bytes(serialization.Encoding.PEM))
    result = headless("--server", server.url, "--ca", str(ca), "--json", "health")
    assert result.returncode == 1
    body = json.loads(result.stdout)
    assert body["state"] == "certificate_error"
    assert "contact IT" in body["message"]


def test_headless_never_imports_qt(server):
    code = (
        "import sys, asyncio; from app import headless; "
        f"rc = headless.main(['--server', {server.url!r}, '--ca', {str(server.ca_path)!r}, "
        "'health']); "
        "bad = [m for m in sys.modules if m.split('.')[0] in ('PySide6', 'qasync')]; "
        "print('QT', bad); sys.exit(rc)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 0, result.stderr
    assert "QT []" in result.stdout

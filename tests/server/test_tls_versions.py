"""The server speaks TLS 1.2 and 1.3 only, checked with Debian's openssl s_client.

``-cipher DEFAULT@SECLEVEL=0`` lets this OpenSSL even offer TLS 1.0/1.1 (its default
security level forbids them), so a refusal is the server's, not the client's.
"""

from __future__ import annotations

import re
import shutil
import subprocess

import pytest

pytestmark = pytest.mark.skipif(shutil.which("openssl") is None, reason="openssl not installed")


def _handshake(server, flag: str) -> tuple[bool, str]:
    result = subprocess.run(
        ["openssl", "s_client", "-connect", f"127.0.0.1:{server.port}", "-servername",
         "localhost", "-CAfile", str(server.ca_path), flag, "-cipher", "DEFAULT@SECLEVEL=0",
         "-verify_return_error", "-brief"],
        input="", capture_output=True, text=True, timeout=30, check=False)
    output = result.stdout + result.stderr
    protocol = re.search(r"Protocol version: (\S+)", output)
    # Had the client itself refused to offer the version, this is what it would say.
    assert "no protocols available" not in output
    return result.returncode == 0 and protocol is not None, protocol.group(1) if protocol else ""


@pytest.mark.parametrize(("flag", "version"), [("-tls1_2", "TLSv1.2"), ("-tls1_3", "TLSv1.3")])
def test_modern_versions_are_accepted_with_a_verified_chain(server, flag, version):
    ok, negotiated = _handshake(server, flag)
    assert ok and negotiated == version


@pytest.mark.parametrize("flag", ["-tls1", "-tls1_1"])
def test_old_versions_are_refused(server, flag):
    ok, negotiated = _handshake(server, flag)
    assert not ok and negotiated == ""

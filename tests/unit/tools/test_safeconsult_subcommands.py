"""``safeconsult deidentify`` and ``safeconsult verify-release`` through the real console
entry point (subprocess), without starting the GUI."""

import subprocess
import sys

import pydicom

from tests.support.dicom_gen import write_ct_series


def safeconsult(*args: str) -> subprocess.CompletedProcess:
    code = "import sys; from app.main import main; sys.exit(main(sys.argv[1:]))"
    return subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True,
                          timeout=120, env={"PATH": "/usr/bin:/bin", "QT_QPA_PLATFORM": "none"})


def test_deidentify_writes_copies_without_the_patient(tmp_path):
    series = tmp_path / "in"
    write_ct_series(series, slices=3)
    name = str(pydicom.dcmread(next(series.iterdir())).PatientName)
    result = safeconsult("deidentify", str(series), "--out", str(tmp_path / "out"))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "3 written, 0 failed" in result.stdout
    outputs = sorted((tmp_path / "out").iterdir())
    assert len(outputs) == 3
    for path in outputs:
        ds = pydicom.dcmread(path)
        assert ds.PatientIdentityRemoved == "YES"
        assert name not in path.read_bytes().decode("latin-1")
    assert name not in result.stdout + result.stderr


def test_deidentify_usage_error_is_exit_2(tmp_path):
    assert safeconsult("deidentify", str(tmp_path)).returncode == 2  # no --out


def test_verify_release_is_reachable(tmp_path):
    result = safeconsult("verify-release", "--help")
    assert result.returncode == 0
    assert "--key" in result.stdout

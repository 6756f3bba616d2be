"""The import contracts hold, and would catch a violation.

The negative case copies the package tree, plants a Qt import in app/core (and, separately,
an upward import from core to services) and runs import-linter on the copy: it must fail.
"""

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
LINT = Path(sys.executable).with_name("lint-imports")


def run_lint(root: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(LINT), "--config", str(root / "pyproject.toml"), "--no-cache"],
        cwd=root, capture_output=True, text=True, timeout=120,
        env={"PYTHONPATH": str(root), "PATH": "/usr/bin:/bin"},
    )


@pytest.fixture(scope="module")
def tree_copy(tmp_path_factory) -> Path:
    dst = tmp_path_factory.mktemp("tree")
    for name in ("app", "server_stub"):
        shutil.copytree(ROOT / name, dst / name, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", dst / "pyproject.toml")
    return dst


def test_contracts_hold_on_the_real_tree():
    result = run_lint(ROOT)
    assert result.returncode == 0, result.stdout[-3000:]


@pytest.mark.parametrize(
    ("planted", "broken"),
    [
        ("import PySide6.QtWidgets\n", "Only ui imports Qt"),
        ("import app.services\n", "Client layers point one way"),
        ("import server_stub.main\n", "Client and server meet only through the protocol"),
    ],
)
def test_a_planted_violation_breaks_the_contracts(tree_copy, planted, broken):
    target = tree_copy / "app" / "core" / "planted_violation.py"
    target.write_text(planted)
    try:
        result = run_lint(tree_copy)
    finally:
        target.unlink()
    assert result.returncode != 0
    assert f"{broken} BROKEN" in result.stdout

"""CI's smoke form of the installer build (the full build is `slow`: ~2-10 minutes here).

- The PyInstaller spec is evaluated with PyInstaller's real hook helpers (what it collects:
  every app module, the pylibjpeg plugins and their entry-point metadata, the .qm
  translations, the icon); only the build steps themselves (Analysis, PYZ, EXE, COLLECT)
  are recorded instead of run.
- The .deb is packed by installers/build_deb.sh around a stand-in bundle (a shell script
  for the executable) and checked with dpkg-deb; as root it is also installed into a
  scratch root with installers/check_deb.sh.
- `slow`: the real build (installers/build.sh): bundle, self-test of a copy of the bundle
  with an empty environment away from the tree, .deb, installed self-test.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SPEC = ROOT / "installers" / "safeconsult.spec"
needs_dpkg = pytest.mark.skipif(shutil.which("dpkg-deb") is None, reason="needs dpkg-deb")


class _Step:
    def __init__(self, name: str, seen: dict) -> None:
        self.name, self.seen = name, seen

    def __call__(self, *args, **kwargs):
        self.seen.setdefault(self.name, []).append((args, kwargs))
        return type(self.name, (), {"pure": [], "scripts": [], "binaries": [], "datas": []})()


def evaluate_spec() -> dict:
    pytest.importorskip("PyInstaller")
    seen: dict = {}
    namespace = {"SPECPATH": str(SPEC.parent),
                 **{name: _Step(name, seen) for name in ("Analysis", "PYZ", "EXE", "COLLECT")}}
    exec(compile(SPEC.read_text(), str(SPEC), "exec"), namespace)
    return seen


def test_the_spec_collects_what_imports_alone_do_not_show():
    seen = evaluate_spec()
    (_, analysis), = seen["Analysis"]
    hidden = set(analysis["hiddenimports"])
    # Every module of the client (loaded by name: tools, --self-test, lazy imports).
    modules = {".".join(p.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")
               for p in (ROOT / "app").rglob("*.py")}
    assert modules - hidden == set(), "app modules the bundle would miss"
    assert {"app.selftest", "app.tools.release", "app.services.updates", "libjpeg", "openjpeg",
            "rle", "pylibjpeg"} <= hidden
    targets = {(Path(src).name, dest) for src, dest in analysis["datas"]}
    assert ("safeconsult_zh_CN.qm", "app/ui/i18n") in targets
    assert ("resources", "resources") in targets
    # pydicom finds the decoders through pylibjpeg's entry points: the dist-info must come.
    for dist in ("pylibjpeg_libjpeg", "pylibjpeg_openjpeg", "pylibjpeg_rle"):
        info = [src for src, _ in analysis["datas"] if Path(src).name.startswith(dist + "-")]
        assert info and (Path(info[0]) / "entry_points.txt").exists(), dist
    assert "server_stub" in analysis["excludes"]
    names = [kwargs["name"] for _, kwargs in seen["EXE"]]
    assert names == (["safeconsult", "safeconsult-cli"] if sys.platform == "win32"
                     else ["safeconsult"])


def stand_in_bundle(where: Path) -> Path:
    bundle = where / "safeconsult"
    (bundle / "_internal").mkdir(parents=True)
    exe = bundle / "safeconsult"
    exe.write_text('#!/bin/sh\n[ "$1" = --self-test ] && echo "self-test passed"\n')
    exe.chmod(0o755)
    (bundle / "_internal" / "lib.so").write_bytes(b"\0" * 4096)
    return bundle


def dpkg_deb(*args: str) -> str:
    return subprocess.run(["dpkg-deb", *args], capture_output=True, text=True,
                          check=True).stdout


@needs_dpkg
def test_the_deb_layout(tmp_path):
    out = tmp_path / "out"
    built = subprocess.run(["bash", str(ROOT / "installers" / "build_deb.sh"),
                            str(stand_in_bundle(tmp_path)), str(out)],
                           capture_output=True, text=True, timeout=120)
    assert built.returncode == 0, built.stderr
    deb = Path(built.stdout.strip().splitlines()[-1])
    from app import __version__

    assert deb.name == f"safeconsult_{__version__}_{deb.name.rsplit('_', 1)[1]}"
    info = dpkg_deb("--info", str(deb))
    for field in ("Package: safeconsult", f"Version: {__version__}", "Installed-Size:",
                  "Depends: libc6", "conffiles", "postinst", "postrm"):
        assert field in info, field
    assert dpkg_deb("-f", str(deb), "Package") == "safeconsult\n"
    contents = dpkg_deb("--contents", str(deb))
    for path in ("./opt/safeconsult/safeconsult", "./opt/safeconsult/_internal/lib.so",
                 "./usr/share/applications/safeconsult.desktop",
                 "./usr/share/icons/hicolor/scalable/apps/safeconsult.svg",
                 "./usr/share/icons/hicolor/256x256/apps/safeconsult.png",
                 "./etc/safeconsult/README", "./usr/share/doc/safeconsult/copyright"):
        assert path in contents, path
    assert "./usr/bin/safeconsult -> /opt/safeconsult/safeconsult" in contents
    assert "root/root" in contents and "policy.json" not in contents  # IT's file, not ours
    control = tmp_path / "control"
    subprocess.run(["dpkg-deb", "-e", str(deb), str(control)], check=True)
    assert (control / "conffiles").read_text() == "/etc/safeconsult/README\n"
    files = tmp_path / "files"
    subprocess.run(["dpkg-deb", "-x", str(deb), str(files)], check=True)
    desktop = (files / "usr/share/applications/safeconsult.desktop").read_text()
    assert "Exec=/usr/bin/safeconsult\n" in desktop and "Icon=safeconsult\n" in desktop
    if shutil.which("desktop-file-validate"):
        subprocess.run(["desktop-file-validate", str(files / "usr/share/applications/"
                                                        "safeconsult.desktop")], check=True)
    if os.geteuid() == 0 and shutil.which("dpkg"):
        checked = subprocess.run(["bash", str(ROOT / "installers" / "check_deb.sh"), str(deb)],
                                 capture_output=True, text=True, timeout=120)
        assert checked.returncode == 0, checked.stderr
        assert "self-test passed" in checked.stdout


@pytest.mark.slow
@pytest.mark.timeout(3600)
@needs_dpkg
def test_full_build_bundle_and_deb_pass_their_self_tests():
    """installers/build.sh end to end (minutes). The script itself runs the bundle's
    self-test from a copy with `env -i` in another directory, and -- as root -- the
    self-test of the .deb installed into a scratch root."""
    built = subprocess.run(["bash", str(ROOT / "installers" / "build.sh")], cwd=ROOT,
                           capture_output=True, text=True, timeout=3600)
    assert built.returncode == 0, built.stdout[-3000:] + built.stderr[-3000:]
    assert built.stdout.count("self-test passed") == (2 if os.geteuid() == 0 else 1)
    assert "(bundle)" in built.stdout

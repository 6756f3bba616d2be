"""Installers: bundle size, installed size, and the bundle's cold start against
``python -m app`` from source in the same run (goal: at most 1.2x).

Start-up is measured as in test_startup_bench.py: process start -> the sign-in window
rendered and saved (``--screenshot``), wall time and the child's CPU time to that frame,
median of interleaved runs. The source run has its bytecode cached (as an installed
package has); the bundle's modules are compiled into it. ``--self-test`` (every native
library loaded and used) is timed both ways too, for information.

Uses installers/dist/safeconsult and the .deb beside it; builds them first when missing
(installers/build.sh; minutes).
"""

from __future__ import annotations

import os
import re
import statistics
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.bench.test_startup_bench import time_to_render

ROOT = Path(__file__).resolve().parents[2]
DIST = ROOT / "installers" / "dist"
BUNDLE = DIST / "safeconsult"
RUNS = 11
GOAL = 1.2


def du_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file() and not p.is_symlink())


def ensure_built() -> Path:
    from app import __version__

    debs = sorted(DIST.glob(f"safeconsult_{__version__}_*.deb"))
    if not (BUNDLE / "safeconsult").exists() or not debs:
        started = time.monotonic()
        subprocess.run(["bash", str(ROOT / "installers" / "build.sh")], cwd=ROOT, check=True,
                       timeout=3600)
        print(f"\nbuilt the bundle and the .deb in {time.monotonic() - started:.0f} s")
        debs = sorted(DIST.glob(f"safeconsult_{__version__}_*.deb"))
    return debs[-1]


def timed(command: list[str]) -> float:
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen"}
    started = time.perf_counter()
    result = subprocess.run(command, capture_output=True, text=True, timeout=300, cwd=ROOT,
                            env=env)
    assert result.returncode == 0, result.stdout + result.stderr
    return time.perf_counter() - started


@pytest.mark.bench
def test_bundle_size_and_cold_start(tmp_path):
    deb = ensure_built()
    installed_kb = int(subprocess.run(["dpkg-deb", "-f", str(deb), "Installed-Size"],
                                      capture_output=True, text=True, check=True).stdout)
    pycache = tmp_path / "pycache"
    commands = {
        "bundle": [str(BUNDLE / "safeconsult"), "--screenshot", str(tmp_path / "b.png"),
                   "--data-dir", str(tmp_path / "b")],
        "source": [sys.executable, "-m", "app", "--screenshot", str(tmp_path / "s.png"),
                   "--data-dir", str(tmp_path / "s")],
    }
    for name, command in commands.items():  # warm the page cache and the .pyc cache
        time_to_render(command, pycache if name == "source" else None)
    runs: dict[str, list[tuple[float, float, float]]] = {name: [] for name in commands}
    for _ in range(RUNS):
        for name, command in commands.items():
            runs[name].append(time_to_render(command, pycache if name == "source" else None))
    self_tests = {"bundle": [], "source": []}
    for _ in range(3):
        self_tests["bundle"].append(timed([str(BUNDLE / "safeconsult"), "--self-test"]))
        self_tests["source"].append(timed([sys.executable, "-m", "app", "--self-test"]))

    def median_ms(name: str, index: int) -> float:
        return statistics.median(r[index] for r in runs[name]) * 1000

    wall = {n: median_ms(n, 0) for n in runs}
    frame_cpu = {n: median_ms(n, 1) for n in runs}
    cpu = {n: median_ms(n, 2) for n in runs}
    selftest = {n: statistics.median(v) * 1000 for n, v in self_tests.items()}
    wall_ratio = wall["bundle"] / wall["source"]
    cpu_ratio = frame_cpu["bundle"] / frame_cpu["source"]
    version = re.sub(r"^safeconsult_|\.deb$", "", deb.name)
    print(
        f"\ninstallers ({version})"
        f"\n  bundle (installers/dist/safeconsult)  {du_bytes(BUNDLE) / 2**20:8.1f} MiB"
        f"\n  .deb file                             {deb.stat().st_size / 2**20:8.1f} MiB"
        f"\n  installed size (dpkg Installed-Size)  {installed_kb / 1024:8.1f} MiB"
        f"\ncold start to the rendered sign-in window, median of {RUNS} interleaved runs"
        f"\n                         wall to frame   CPU to frame   CPU (whole process)"
        f"\n  bundle                 {wall['bundle']:9.1f} ms   {frame_cpu['bundle']:9.1f} ms"
        f"   {cpu['bundle']:9.1f} ms"
        f"\n  python -m app (source) {wall['source']:9.1f} ms   {frame_cpu['source']:9.1f} ms"
        f"   {cpu['source']:9.1f} ms"
        f"\n  ratio bundle / source  {wall_ratio:9.2f}x     {cpu_ratio:9.2f}x     "
        f"{cpu['bundle'] / cpu['source']:9.2f}x"
        f"\n  --self-test, median of 3: bundle {selftest['bundle']:.0f} ms, "
        f"source {selftest['source']:.0f} ms ({selftest['bundle'] / selftest['source']:.2f}x)"
        f"\n  (goal <= {GOAL}x: wall {'met' if wall_ratio <= GOAL else 'NOT met'}, "
        f"CPU to frame {'met' if cpu_ratio <= GOAL else 'NOT met'}; "
        f"load average {os.getloadavg()[0]:.1f})"
    )
    assert cpu_ratio <= GOAL, f"bundle CPU to the first frame {cpu_ratio:.2f}x the source's"

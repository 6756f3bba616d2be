"""Deleting files for a wipe or a kiosk clean-up, and writing small files durably.

Deletion is plain unlinking: the files are ciphertext whose keys are destroyed first, so
overwriting them would add time (seconds per gigabyte) and nothing else -- on SSDs and
copy-on-write file systems an overwrite does not even reach the old blocks.
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class EraseResult:
    files: int = 0
    bytes: int = 0
    problems: list[str] = field(default_factory=list)  # relative paths, no content


def erase_tree_contents(root: Path) -> EraseResult:
    """Unlink every file below ``root`` and remove its sub-directories; keep ``root``.

    Goes on past errors (a file held open on Windows, a permission problem) and reports
    them, so one stuck file does not leave the rest in place.
    """
    result = EraseResult()
    if not root.exists():
        return result
    for dirpath, dirnames, filenames in os.walk(root, topdown=False):
        here = Path(dirpath)
        for name in filenames:
            path = here / name
            try:
                size = path.lstat().st_size
                path.unlink()
            except FileNotFoundError:
                continue
            except OSError:
                result.problems.append(str(path.relative_to(root)))
                continue
            result.files += 1
            result.bytes += size
        for name in dirnames:
            path = here / name
            try:
                if path.is_symlink():
                    path.unlink()
                else:
                    path.rmdir()
            except FileNotFoundError:
                continue
            except OSError:
                result.problems.append(str(path.relative_to(root)) + "/")
    # Make the unlinks durable before the caller removes its wipe marker: otherwise a power
    # cut could bring back directory entries after the marker is gone.
    fsync_dir(root)
    return result


def fsync_dir(directory: Path) -> None:
    """Make a rename or unlink in ``directory`` durable (POSIX; a no-op where unsupported)."""
    with contextlib.suppress(OSError, AttributeError):
        fd = os.open(directory, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def write_durably(path: Path, data: bytes) -> None:
    """Write ``data`` so that after a crash ``path`` holds either nothing or all of it."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as out:
        out.write(data)
        out.flush()
        os.fsync(out.fileno())
    os.replace(tmp, path)
    fsync_dir(path.parent)


def remove_durably(path: Path) -> None:
    path.unlink(missing_ok=True)
    fsync_dir(path.parent)

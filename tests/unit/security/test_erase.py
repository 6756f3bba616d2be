import os
from pathlib import Path

from app.security.erase import erase_tree_contents, write_durably


def test_erases_nested_files_and_dirs_keeps_root(tmp_path):
    root = tmp_path / "data"
    (root / "a" / "b").mkdir(parents=True)
    (root / "a" / "b" / "f1").write_bytes(b"12345")
    (root / "f2").write_bytes(b"12")
    result = erase_tree_contents(root)
    assert (result.files, result.bytes, result.problems) == (2, 7, [])
    assert root.is_dir() and list(root.iterdir()) == []


def test_symlinks_are_removed_not_followed(tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "keep.txt").write_bytes(b"not ours")
    root = tmp_path / "data"
    root.mkdir()
    os.symlink(outside, root / "dirlink")
    os.symlink(outside / "keep.txt", root / "filelink")
    erase_tree_contents(root)
    assert list(root.iterdir()) == []
    assert (outside / "keep.txt").read_bytes() == b"not ours"


def test_missing_root_is_fine(tmp_path):
    assert erase_tree_contents(tmp_path / "nope").files == 0


def test_unremovable_entries_are_reported_and_the_rest_goes(tmp_path, monkeypatch):
    root = tmp_path / "data"
    (root / "stuck").mkdir(parents=True)
    (root / "stuck" / "f").write_bytes(b"x")
    (root / "other").write_bytes(b"y")
    real_unlink = Path.unlink

    def unlink(self, *args, **kwargs):
        # As on Windows when another process holds the file open.
        if self.name == "f":
            raise PermissionError(13, "in use")
        return real_unlink(self, *args, **kwargs)

    monkeypatch.setattr(Path, "unlink", unlink)
    result = erase_tree_contents(root)
    assert result.problems == ["stuck/f", "stuck/"]
    assert result.files == 1 and not (root / "other").exists()


def test_write_durably_replaces_whole(tmp_path):
    target = tmp_path / "c" / "marker.json"
    write_durably(target, b"one")
    write_durably(target, b"two")
    assert target.read_bytes() == b"two"
    assert [p.name for p in target.parent.iterdir()] == ["marker.json"]

"""GUI composition root (filled in below)."""


def main() -> int:
    return 0

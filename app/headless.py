"""Qt-free composition root (filled in below)."""

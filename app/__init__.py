"""SafeConsult client.

Layers (top to bottom; each imports only those below it, enforced by import-linter):
main | headless > ui > services > storage | net | rtc | security > crypto | imaging > config > core.
"""

__version__ = "0.1.0"

"""The facts the About dialog shows, gathered by the composition root.

Kept apart from the dialog so the window can be built without loading the dialog's code
(it is opened rarely; start-up stays short). A ``NamedTuple`` rather than a frozen
dataclass: just as read-only, and ~0.6 ms cheaper to define before the first frame.
"""

from __future__ import annotations

from pathlib import Path
from typing import NamedTuple

from app.config import Policy


class AboutInfo(NamedTuple):
    version: str
    policy: Policy
    policy_problem: str
    data_dir: Path

    @property
    def server_url(self) -> str:
        return self.policy.server_url

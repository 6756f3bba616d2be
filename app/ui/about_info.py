"""The facts the About dialog shows, gathered by the composition root.

Kept apart from the dialog so the window can be built without loading the dialog's code
(it is opened rarely; start-up stays short).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from app.config import Policy


@dataclass(frozen=True)
class AboutInfo:
    version: str
    policy: Policy
    policy_problem: str
    data_dir: Path

    @property
    def server_url(self) -> str:
        return self.policy.server_url

"""``safeconsult update [--check] [--data-dir DIR]``: the client's update check from the
command line (IT scripts, a scheduled task), with this machine's signed policy.

The server address and its pinned CA come from the machine policy, verified like the GUI's
(an unsigned or expired policy falls back to the defaults, which pin no CA: then there is no
update check at all). The root of trust is ``update-root.json`` beside the policy.
``--check`` only reports; without it a newer verified release is downloaded and staged.

Exit status: 0 up to date, newer release available (--check) or staged; 1 refused (the
message says why); 3 the server could not be reached.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from app.config import Paths, load_policy
from app.security.policy_signing import system_policy_verifier
from app.services.updates import UpdateService, update_root_path


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="safeconsult update",
                                     description="Check for, verify and stage an update.")
    parser.add_argument("--check", action="store_true", help="report only; download nothing")
    parser.add_argument("--data-dir", type=Path, metavar="DIR",
                        help="this client's data folder (default: the per-user folder)")
    parser.add_argument("--trust-root", type=Path, metavar="FILE",
                        help=f"TUF root metadata (default: {update_root_path()})")
    args = parser.parse_args(argv)
    loaded = load_policy(verify=system_policy_verifier())
    if loaded.problem:
        print(f"safeconsult: machine policy refused, defaults in force: {loaded.problem}",
              file=sys.stderr)
    policy = loaded.policy
    if not policy.pinned_ca_pem:
        print("safeconsult: no update check: the machine policy pins no server CA.",
              file=sys.stderr)
        return 1
    paths = Paths.under(args.data_dir) if args.data_dir else Paths.for_user()
    service = UpdateService(server_url=policy.server_url, ca_pem=policy.pinned_ca_pem,
                            state_dir=paths.data / "updates", trust_root=args.trust_root)
    result = service.check() if args.check else service.apply()
    print(result.message, file=sys.stderr if result.refused else sys.stdout)
    return {"refused": 1, "unavailable": 3}.get(result.status, 0)


if __name__ == "__main__":
    raise SystemExit(main())

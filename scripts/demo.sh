#!/usr/bin/env bash
# The demo: an embedded reference server on localhost (fresh TLS CA, demo users) and the client.
# Extra arguments go to `safeconsult --demo`, e.g. `--join DIR` for a second client.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
source "$ROOT/scripts/bootstrap.sh"
exec "$ROOT/.venv/bin/safeconsult" --demo "$@"

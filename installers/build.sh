#!/usr/bin/env bash
# Builds the SafeConsult client installers here:
#   installers/dist/safeconsult/              the PyInstaller one-folder bundle
#   installers/dist/safeconsult_V_ARCH.deb    the Debian package (installers/build_deb.sh)
# and checks the bundle: a copy of it, moved away from the source tree and started with an
# empty environment (env -i) in another directory, must pass `safeconsult --self-test`.
# With SAFECONSULT_RELEASE_KEY=PRIV.pem the .deb also gets a signed release manifest
# (python -m app.tools.release sign). As root, the .deb is also installed into a scratch root
# and self-tested there (installers/check_deb.sh). Timings: docs/performance.md, "Installers".
# Usage: bash installers/build.sh [--no-deb]
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
bash scripts/bootstrap.sh  # venv, dependencies (pyinstaller is in the dev extra), .qm files
PY="$ROOT/.venv/bin/python"

"$ROOT/.venv/bin/pyinstaller" --noconfirm --log-level WARN \
    --distpath installers/dist --workpath installers/build installers/safeconsult.spec \
    2> >(grep -v "required via ctypes not found" >&2)

# The self-test, as on a workstation: no source tree, no venv, no inherited environment.
CHECK="$(mktemp -d)"
trap 'rm -rf "$CHECK"' EXIT
cp -a installers/dist/safeconsult "$CHECK/safeconsult"
mkdir "$CHECK/cwd"
(cd "$CHECK/cwd" && env -i HOME="$CHECK/cwd" LANG=C.UTF-8 QT_QPA_PLATFORM=offscreen \
    "$CHECK/safeconsult/safeconsult" --self-test)
echo "bundle: installers/dist/safeconsult ($(du -sh installers/dist/safeconsult | cut -f1))"

if [ "${1:-}" != "--no-deb" ]; then
  DEB="$(bash installers/build_deb.sh)"
  echo "deb: $DEB ($(du -h "$DEB" | cut -f1))"
  if [ "$(id -u)" = 0 ]; then
    bash installers/check_deb.sh "$DEB"  # installed into a scratch root, then self-tested
  fi
  if [ -n "${SAFECONSULT_RELEASE_KEY:-}" ]; then
    "$PY" -m app.tools.release sign "$DEB" --key "$SAFECONSULT_RELEASE_KEY"
  fi
fi

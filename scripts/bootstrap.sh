#!/usr/bin/env bash
# Sets up everything SafeConsult needs on a fresh machine; safe to run again (fast when done).
# Sourced by scripts/demo.sh and scripts/test.sh.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$ROOT/.venv"
PY="${PYTHON:-python3}"

# Debian tools the tests use as independent references (oathtool, openssl, dcmtk, coturn,
# tesseract, Xvfb). Installed when we are root on Debian; otherwise we say what is missing.
DEB_PACKAGES=(oathtool openssl xvfb dcmtk dicom3tools coturn tesseract-ocr fonts-wqy-microhei fonts-noto-color-emoji
              libegl1 libgl1 libxkbcommon0 libfontconfig1 libdbus-1-3 poppler-utils
              libportaudio2)
# The stamp holds the list it was made for: a package added to the list is installed on a
# machine set up before it, not skipped.
stamp_deb="$VENV/.deb-ok"
want_deb="${DEB_PACKAGES[*]}"
if [ "$(cat "$stamp_deb" 2>/dev/null || true)" != "$want_deb" ]; then
  missing=()
  for p in "${DEB_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  if [ ${#missing[@]} -gt 0 ]; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
      echo "bootstrap: installing Debian packages: ${missing[*]}"
      export DEBIAN_FRONTEND=noninteractive
      apt-get update -qq >/dev/null
      apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
    else
      echo "bootstrap: NOTE: these system packages are missing and I cannot install them" \
           "(not root or not Debian): ${missing[*]}" >&2
      echo "bootstrap: the tests that need them will be skipped with that reason." >&2
    fi
  fi
fi

if [ ! -x "$VENV/bin/python" ]; then
  echo "bootstrap: creating virtual environment in .venv"
  "$PY" -m venv "$VENV"
  "$VENV/bin/python" -m pip install -q --upgrade pip
fi
# Reinstall only when the dependency list changed.
want="$(sha256sum "$ROOT/pyproject.toml" | cut -d' ' -f1)"
have="$(cat "$VENV/.deps-stamp" 2>/dev/null || true)"
if [ "$want" != "$have" ]; then
  echo "bootstrap: installing SafeConsult and its dependencies"
  "$VENV/bin/python" -m pip install -q -e "$ROOT[dev]"
  echo "$want" > "$VENV/.deps-stamp"
fi
# Compile the UI translations (.ts -> .qm) when a source is newer than its output.
for ts in "$ROOT"/app/ui/i18n/*.ts; do
  [ -e "$ts" ] || continue
  qm="${ts%.ts}.qm"
  if [ ! -f "$qm" ] || [ "$ts" -nt "$qm" ]; then
    "$VENV/bin/pyside6-lrelease" -silent "$ts" -qm "$qm"
  fi
done
printf '%s' "$want_deb" > "$stamp_deb"

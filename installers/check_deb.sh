#!/usr/bin/env bash
# Installs a SafeConsult .deb into a scratch root (dpkg --root, not this machine's /) and
# runs the installed `safeconsult --self-test` with an empty environment.
# Needs root (dpkg); dependencies are not installed in the scratch root (--force-depends).
# Usage: bash installers/check_deb.sh DEB
set -euo pipefail
DEB="$1"
R="$(mktemp -d)"
trap 'rm -rf "$R"' EXIT
mkdir -p "$R/var/lib/dpkg/info" "$R/var/lib/dpkg/updates" "$R/var/lib/dpkg/triggers"
touch "$R/var/lib/dpkg/status"
dpkg --root="$R" --force-depends --force-script-chrootless --log=/dev/null -i "$DEB" \
    >/dev/null 2>&1 || { echo "check_deb: dpkg -i failed" >&2; exit 1; }
dpkg --root="$R" -s safeconsult | grep -q "^Status: install ok installed"
LINK="$(readlink "$R/usr/bin/safeconsult")"
[ "$LINK" = /opt/safeconsult/safeconsult ] || { echo "check_deb: bad link $LINK" >&2; exit 1; }
[ -f "$R/usr/share/applications/safeconsult.desktop" ] && [ -f "$R/etc/safeconsult/README" ]
echo "installed size: $(du -sk "$R/opt" "$R/usr" "$R/etc" | awk '{s+=$1} END {print s}') KB"
(cd "$R" && env -i HOME="$R" LANG=C.UTF-8 QT_QPA_PLATFORM=offscreen "$R$LINK" --self-test)

#!/usr/bin/env bash
# Packs the one-folder bundle (installers/dist/safeconsult) into a .deb with dpkg-deb:
#   /opt/safeconsult/            the bundle
#   /usr/bin/safeconsult         -> /opt/safeconsult/safeconsult
#   /usr/share/applications/safeconsult.desktop, hicolor icons (SVG, 48 and 256 px PNG)
#   /etc/safeconsult/README      (a conffile; IT's policy files beside it are never ours)
# Usage: bash installers/build_deb.sh [BUNDLE_DIR] [OUT_DIR]
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BUNDLE="${1:-$ROOT/installers/dist/safeconsult}"
OUT="${2:-$ROOT/installers/dist}"
PY="$ROOT/.venv/bin/python"
VERSION="$("$PY" -c 'import app; print(app.__version__)')"
ARCH="$(dpkg --print-architecture)"
[ -x "$BUNDLE/safeconsult" ] || { echo "build_deb: no bundle at $BUNDLE (run installers/build.sh)" >&2; exit 2; }

STAGE="$(mktemp -d)"
trap 'rm -rf "$STAGE"' EXIT
PKG="$STAGE/safeconsult"
install -d -m 755 "$PKG/DEBIAN" "$PKG/opt" "$PKG/usr/bin" "$PKG/usr/share/applications" \
    "$PKG/usr/share/icons/hicolor/scalable/apps" "$PKG/usr/share/icons/hicolor/48x48/apps" \
    "$PKG/usr/share/icons/hicolor/256x256/apps" "$PKG/etc/safeconsult" \
    "$PKG/usr/share/doc/safeconsult"
cp -a "$BUNDLE" "$PKG/opt/safeconsult"
chmod -R u+rwX,go+rX,go-w "$PKG/opt/safeconsult"
ln -s /opt/safeconsult/safeconsult "$PKG/usr/bin/safeconsult"
install -m 644 "$ROOT/installers/linux/safeconsult.desktop" "$PKG/usr/share/applications/"
install -m 644 "$ROOT/resources/icons/safeconsult.svg" "$PKG/usr/share/icons/hicolor/scalable/apps/"
install -m 644 "$ROOT/resources/icons/safeconsult-48.png" \
    "$PKG/usr/share/icons/hicolor/48x48/apps/safeconsult.png"
install -m 644 "$ROOT/resources/icons/safeconsult-256.png" \
    "$PKG/usr/share/icons/hicolor/256x256/apps/safeconsult.png"
install -m 644 "$ROOT/installers/linux/etc-README" "$PKG/etc/safeconsult/README"
printf 'SafeConsult %s\nProprietary. See /etc/safeconsult/README for the machine policy.\n' \
    "$VERSION" > "$PKG/usr/share/doc/safeconsult/copyright"
install -m 755 "$ROOT/installers/linux/debian/postinst" "$ROOT/installers/linux/debian/postrm" \
    "$PKG/DEBIAN/"
echo "/etc/safeconsult/README" > "$PKG/DEBIAN/conffiles"
(cd "$PKG" && find . -path ./DEBIAN -prune -o -type f -print0 | sort -z \
    | xargs -0 md5sum | sed 's# \./# #' > DEBIAN/md5sums)
INSTALLED_KB="$(du -sk --exclude=DEBIAN "$PKG" | cut -f1)"
cat > "$PKG/DEBIAN/control" <<CONTROL
Package: safeconsult
Version: $VERSION
Architecture: $ARCH
Maintainer: SafeConsult IT <it@safeconsult.invalid>
Installed-Size: $INSTALLED_KB
Depends: libc6 (>= 2.31), libegl1, libgl1, libfontconfig1, libxkbcommon0, libxcb1, libdbus-1-3
Recommends: gnome-keyring | kwalletmanager
Section: net
Priority: optional
Homepage: https://safeconsult.invalid
Description: secure clinical consults (encrypted video, chat and DICOM images)
 SafeConsult is a desktop client for secure clinical consults: end-to-end
 encrypted video consults, secure chat and medical image (DICOM) viewing, with
 the patient data it keeps on the workstation encrypted and bound to the device.
 .
 The machine policy lives in /etc/safeconsult/ (see README there).
CONTROL
mkdir -p "$OUT"
DEB="$OUT/safeconsult_${VERSION}_${ARCH}.deb"
# gzip: readable by every dpkg in use, and fast (xz: -30% size, ~10 min here). DEB_COMPRESS=xz for that.
dpkg-deb --root-owner-group -Z"${DEB_COMPRESS:-gzip}" -z"${DEB_LEVEL:-6}" --build "$PKG" "$DEB" >/dev/null
echo "$DEB"

"""OS-facing protection: the only importer of keyring. Device binding, wipe, kiosk."""

"""Use cases, async and Qt-free. State lives in evented objects that views observe."""

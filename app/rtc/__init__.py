"""Real-time media: the only importer of aiortc/av. Calls, signaling, redacting tracks."""

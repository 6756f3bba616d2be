"""Network: the only importer of httpx and websockets. One transport for every request."""

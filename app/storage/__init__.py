"""Encrypted cache: the only importer of sqlcipher3. Repositories return core types."""

"""SafeConsult reference server: auth, device binding, key directory, relay, blobs, audit.

It stores and routes ciphertext and the metadata routing needs; it never sees content.
The protocol it implements is docs/protocol.md.
"""

__version__ = "0.1.0"

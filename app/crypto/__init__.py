"""Crypto: the only importer of vodozemac. Device identity, Olm/Megolm, SAS, file AEAD."""

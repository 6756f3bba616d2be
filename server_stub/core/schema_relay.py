"""Schema for rooms, grants, events, to-device messages, blobs (owned by the relay work)."""

SQL = """
SELECT 1;
"""

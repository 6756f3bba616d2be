"""Schema for users, devices, sessions, keys, audit (owned by the auth/devices work)."""

SQL = """
SELECT 1;
"""

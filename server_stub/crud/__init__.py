"""Storage operations on the SQLite database, one module per domain. Routes call these."""

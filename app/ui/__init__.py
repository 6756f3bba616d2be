"""Qt GUI: the only importer of PySide6 and qasync."""

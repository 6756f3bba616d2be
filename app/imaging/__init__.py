"""Imaging: the only importer of pydicom. Load, decode, render, de-identify, watermark."""

"""Imaging: the only importer of pydicom. Load, decode, render, de-identify, watermark.

Entry points: ``load.load`` / ``load.read_dataset`` (files, folders, bytes), ``render.load_frame``
and ``render.Frame.render`` (uint8 images), ``stack.SliceStack`` (a scrollable series),
``overlay``, ``measure``, ``waveform.read_waveforms``, ``deidentify.deidentify_paths``.
Errors are the typed ones in ``errors``. See docs/imaging.md.
"""

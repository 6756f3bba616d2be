"""ECG and other DICOM waveforms (PS3.3 C.10.9 Waveform Module) -> calibrated channels.

Each item of WaveformSequence is a multiplex group: ``NumberOfWaveformSamples`` samples of
``NumberOfWaveformChannels`` channels, interleaved sample by sample in WaveformData. A
channel's physical value is (C.10.9.1.4.3)::

    value = stored * ChannelSensitivity * ChannelSensitivityCorrectionFactor + ChannelBaseline

where the baseline is already in the units of ChannelSensitivityUnitsSequence (UCUM code,
e.g. ``uV``, ``mV``). Time runs from 0 at SamplingFrequency (Hz), offset by
MultiplexGroupTimeOffset (ms) when present.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from pydicom.dataset import Dataset

from app.imaging.errors import DecodeFailed, NoWaveform

_DTYPES = {
    ("SB", 8): "i1", ("UB", 8): "u1", ("SS", 16): "i2", ("US", 16): "u2",
    ("SL", 32): "i4", ("UL", 32): "u4", ("SV", 64): "i8", ("UV", 64): "u8",
}
# UCUM voltage units -> factor to millivolts.
_TO_MV = {"V": 1000.0, "mV": 1.0, "uV": 0.001, "nV": 1e-6}


@dataclass(frozen=True, slots=True)
class Channel:
    label: str
    unit: str  # UCUM code, "" when the samples are in arbitrary units
    values: np.ndarray  # float64, calibrated
    calibrated: bool  # False when the file gave no sensitivity

    def in_millivolts(self) -> np.ndarray:
        factor = _TO_MV.get(self.unit)
        if factor is None:
            raise ValueError(f"channel unit {self.unit or 'none'} is not a voltage")
        return self.values * factor


@dataclass(frozen=True, slots=True)
class MultiplexGroup:
    label: str
    sampling_hz: float
    time_s: np.ndarray
    channels: list[Channel]


def _num(value: object, default: float) -> float:
    try:
        f = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return default
    return f if math.isfinite(f) else default


def _channel_label(ch: Dataset, n: int) -> str:
    label = str(ch.get("ChannelLabel", "") or "")
    if label:
        return label
    source = ch.get("ChannelSourceSequence")
    if source:
        return str(source[0].get("CodeMeaning", "") or f"channel {n + 1}")
    return f"channel {n + 1}"


def _unit(ch: Dataset) -> str:
    units = ch.get("ChannelSensitivityUnitsSequence")
    return str(units[0].get("CodeValue", "") or "") if units else ""


def read_waveforms(ds: Dataset) -> list[MultiplexGroup]:
    seq = ds.get("WaveformSequence")
    if not seq:
        raise NoWaveform("no WaveformSequence")
    little = getattr(ds, "original_encoding", (None, True))[1] is not False
    groups = []
    for n, item in enumerate(seq):
        try:
            groups.append(_group(item, n, little))
        except DecodeFailed:
            raise
        except Exception as exc:  # a malformed channel definition value
            raise DecodeFailed(f"waveform group {n + 1} unreadable ({type(exc).__name__})"
                               ) from None
    return groups


def _group(item: Dataset, n: int, little: bool) -> MultiplexGroup:
    try:
        n_ch = int(item.NumberOfWaveformChannels)
        n_s = int(item.NumberOfWaveformSamples)
        fs = float(item.SamplingFrequency)
        bits = int(item.WaveformBitsAllocated)
        interp = str(item.WaveformSampleInterpretation)
        data = bytes(item.WaveformData)
    except (AttributeError, TypeError, ValueError) as exc:
        raise DecodeFailed(f"waveform group {n + 1} lacks a required attribute "
                           f"({type(exc).__name__})") from None
    if n_ch < 1 or n_s < 1 or not (fs > 0 and math.isfinite(fs)):
        raise DecodeFailed(f"waveform group {n + 1} has implausible dimensions")
    dtype = _DTYPES.get((interp, bits))
    if dtype is None:
        raise DecodeFailed(f"waveform sample interpretation {interp}/{bits} bits unsupported")
    dt = np.dtype(dtype).newbyteorder("<" if little else ">")
    need = n_ch * n_s * dt.itemsize
    if len(data) < need:
        raise DecodeFailed(f"waveform group {n + 1} has {len(data)} of {need} bytes")
    raw = np.frombuffer(data, dtype=dt, count=n_ch * n_s).reshape(n_s, n_ch)
    defs = list(item.get("ChannelDefinitionSequence") or [])
    channels = []
    for c in range(n_ch):
        ch = defs[c] if c < len(defs) else Dataset()
        has_sens = "ChannelSensitivity" in ch
        sens = _num(ch.get("ChannelSensitivity"), 1.0)
        corr = _num(ch.get("ChannelSensitivityCorrectionFactor"), 1.0)
        base = _num(ch.get("ChannelBaseline"), 0.0)
        values = raw[:, c].astype(np.float64) * (sens * corr) + base
        channels.append(Channel(_channel_label(ch, c), _unit(ch) if has_sens else "", values,
                                has_sens))
    offset_s = _num(item.get("MultiplexGroupTimeOffset"), 0.0) / 1000.0
    time_s = offset_s + np.arange(n_s, dtype=np.float64) / fs
    label = str(item.get("MultiplexGroupLabel", "") or f"group {n + 1}")
    return MultiplexGroup(label, fs, time_s, channels)

"""ECG waveform decoding against pydicom's own multiplex decoder (a second implementation)
and against the standard's calibration formula on hand-made data."""

from __future__ import annotations

import numpy as np
import pytest
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence

from app.imaging.errors import DecodeFailed, NoWaveform
from app.imaging.load import read_dataset
from app.imaging.waveform import read_waveforms
from tests.unit.imaging.conftest import data_file


def test_ecg_file_matches_pydicom_multiplex_decoder():
    ds = read_dataset(data_file("waveform_ecg.dcm"))
    groups = read_waveforms(ds)
    assert len(groups) == len(ds.WaveformSequence) == 2
    for index, group in enumerate(groups):
        item = ds.WaveformSequence[index]
        assert group.sampling_hz == float(item.SamplingFrequency)
        assert len(group.channels) == int(item.NumberOfWaveformChannels)
        assert group.time_s.shape == (int(item.NumberOfWaveformSamples),)
        assert group.time_s[1] - group.time_s[0] == pytest.approx(1 / group.sampling_hz)
        reference = ds.waveform_array(index)
        ours = np.stack([c.values for c in group.channels], axis=1)
        np.testing.assert_allclose(ours, reference, rtol=0, atol=1e-9)


def test_ecg_leads_units_and_plausible_amplitude():
    groups = read_waveforms(read_dataset(data_file("waveform_ecg.dcm")))
    rhythm = groups[0]
    labels = [c.label for c in rhythm.channels]
    assert labels[0].startswith("Lead I") and "Lead II" in labels
    assert all(c.unit == "uV" and c.calibrated for c in rhythm.channels)
    lead_ii = rhythm.channels[1].in_millivolts()
    # a human ECG: QRS peaks of a few tenths to a few mV, not volts, not microvolts
    assert 0.2 < np.ptp(lead_ii) < 10
    assert rhythm.time_s[-1] == pytest.approx((len(lead_ii) - 1) / rhythm.sampling_hz)


def _item(samples: np.ndarray, **channel) -> Dataset:
    item = Dataset()
    item.NumberOfWaveformChannels = samples.shape[1]
    item.NumberOfWaveformSamples = samples.shape[0]
    item.SamplingFrequency = 500
    item.WaveformBitsAllocated = 16
    item.WaveformSampleInterpretation = "SS"
    item.MultiplexGroupTimeOffset = 250.0
    item.WaveformData = samples.astype("<i2").tobytes()
    defs = []
    for _ in range(samples.shape[1]):
        ch = Dataset()
        for k, v in channel.items():
            setattr(ch, k, v)
        units = Dataset()
        units.CodeValue = "mV"
        ch.ChannelSensitivityUnitsSequence = Sequence([units])
        defs.append(ch)
    item.ChannelDefinitionSequence = Sequence(defs)
    return item


def test_calibration_formula_and_time_offset():
    raw = np.array([[0, 10], [100, -100], [-32768, 32767]])
    ds = Dataset()
    ds.WaveformSequence = Sequence([_item(raw, ChannelSensitivity=0.005,
                                          ChannelSensitivityCorrectionFactor=2,
                                          ChannelBaseline=0.25)])
    (group,) = read_waveforms(ds)
    expected = raw * 0.005 * 2 + 0.25
    np.testing.assert_allclose(np.stack([c.values for c in group.channels], 1), expected)
    assert group.time_s[0] == pytest.approx(0.25) and group.time_s[2] == pytest.approx(0.254)
    np.testing.assert_allclose(group.channels[0].in_millivolts(), expected[:, 0])


def test_errors_are_typed():
    with pytest.raises(NoWaveform):
        read_waveforms(read_dataset(data_file("CT_small.dcm")))
    ds = Dataset()
    item = _item(np.zeros((10, 2)))
    item.WaveformData = item.WaveformData[:7]
    ds.WaveformSequence = Sequence([item])
    with pytest.raises(DecodeFailed):
        read_waveforms(ds)
    item = _item(np.zeros((10, 2)))
    item.WaveformSampleInterpretation = "MB"  # mu-law: not supported, said so
    ds.WaveformSequence = Sequence([item])
    with pytest.raises(DecodeFailed):
        read_waveforms(ds)

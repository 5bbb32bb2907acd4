"""Vibration waveform snapshots and their bearing diagnosis (issue 16).

A ``vibration_waveform`` sensor sends high-rate snapshots (one waveform per reading) to
``POST /api/v1/data/waveforms``; each snapshot is stored compactly (``waveform_snapshots``, float32 bytes), its
RMS and kurtosis become ordinary readings of two companion sensors, and ``WaveformIngested`` goes to the outbox.
The ``diagnosis`` agent (``core.waveforms.agent``) runs ``core.ml.vibration.diagnosis.diagnose`` on it, stores
the result (``waveform_diagnoses``) and, when a fault is named, raises the sensor's ``bearing-fault`` alert
through the alerting service, with the diagnosis as its evidence (docs/architecture/waveforms.md).
"""

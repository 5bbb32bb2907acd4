"""Vibration analytics for rolling-element bearings: readers of the NASA/IMS and CWRU formats, window features
and envelope analysis, defect frequencies, unsupervised detectors, the alarm stage, training-free diagnosis and a
physics-based run-to-failure simulator (issue 6 §2, notebook 06)."""

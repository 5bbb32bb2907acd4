"""Audio gauntlet (issue 6 §3): machine-sound anomaly detection on MIMII / DCASE 2020 Task 2 clips.

* :mod:`core.ml.audio.io` — clip readers for the MIMII and DCASE layouts, 16 kHz mono loading;
* :mod:`core.ml.audio.features` — log-mel context vectors (DCASE baseline style) and MFCC statistics;
* :mod:`core.ml.audio.metrics` — AUC and the DCASE (non-standardised) pAUC;
* :mod:`core.ml.audio.models` — unsupervised frame models (PCA, GMM, MLP autoencoder) scored per clip, and the
  supervised RandomForest on MFCC statistics;
* :mod:`core.ml.audio.evaluation` — the leak-free evaluation protocol per machine id;
* :mod:`core.ml.audio.generator` — a physics-inspired machine-sound generator for tests;
* :mod:`core.ml.audio.plots`, :mod:`core.ml.audio.tracking`, :mod:`core.ml.audio.pyfunc` — figures, MLflow runs
  and the registered pyfunc model.
"""

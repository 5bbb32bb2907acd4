"""The ML tests read the gauntlets' real published files from ../shared/datasets (never copied into the project):
SM_DATASETS_DIR points there unless the environment already sets it, so the notebooks' and loaders' default paths
(``core.datasets``) find them, in this process and in the papermill kernels it starts."""

from __future__ import annotations

import os

from core.config import PROJECT_ROOT, get_settings

SHARED_DATASETS = (PROJECT_ROOT.parent / "shared" / "datasets").resolve()

if "SM_DATASETS_DIR" not in os.environ:
    os.environ["SM_DATASETS_DIR"] = str(SHARED_DATASETS)
    get_settings.cache_clear()

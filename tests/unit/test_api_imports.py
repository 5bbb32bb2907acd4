"""The API process loads heavy libraries only where they are used (issue 15: peak RSS of the API < 500 MB).

Building the app and its runtime (every agent, the model server, the drift checker) must not import pandas, scipy,
scikit-learn, MLflow and the like: they load on the first request that serves a model, the first champion that
scores, the first drift pass. Checked in a fresh interpreter (the test process has imported everything already).
"""

from __future__ import annotations

import json
import subprocess
import sys

from core.config import PROJECT_ROOT

HEAVY = ("pandas", "scipy", "sklearn", "mlflow", "lightgbm", "prophet", "librosa", "matplotlib", "pyarrow",
         "statsmodels", "papermill", "streamlit", "alembic")  # fmt: skip

_PROBE = """
import json, sys
from core.config import Settings
from apps.api.main import create_app
from core.runtime.bootstrap import bootstrap

settings = Settings(_env_file=None, database_url="postgresql://probe@127.0.0.1:1/probe")
create_app(settings)
bootstrap(settings)  # builds the engine lazily: nothing connects
print(json.dumps(sorted(name for name in {heavy!r} if name in sys.modules)))
"""


def test_building_the_api_and_its_runtime_imports_no_heavy_library() -> None:
    done = subprocess.run(
        [sys.executable, "-c", _PROBE.format(heavy=HEAVY)],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert json.loads(done.stdout.strip().splitlines()[-1]) == []

"""Run the API (``python -m apps.cli serve-api``) under cProfile; write the stats after ``seconds`` (uvicorn
re-raises SIGTERM, so an exit-time dump would never happen). Used by ``bench_loop.py --profile-api``.

    python scripts/bench/profile_api.py OUT.prof SECONDS
"""

from __future__ import annotations

import cProfile
import runpy
import sys
import threading

out, seconds = sys.argv[1], float(sys.argv[2])
profiler = cProfile.Profile()


def _dump() -> None:
    profiler.disable()
    profiler.dump_stats(out)


threading.Timer(seconds, _dump).start()
sys.argv = ["apps.cli", "serve-api"]
profiler.enable()
runpy.run_module("apps.cli", run_name="__main__", alter_sys=True)

"""``python -m apps.api``: the API process (used by the local runner and by docker compose).

Loads and validates the settings first: an unusable configuration (e.g. development secrets with
``SM_ENV=production``) prints the reason to stderr and exits with status 2, without a traceback.
"""

from __future__ import annotations

import logging
import sys


def main() -> int:
    from core.config import ConfigurationError, load_settings

    try:
        settings = load_settings()
        settings.require_service_secrets()
        settings.require_database_url()
    except ConfigurationError as exc:
        print(f"smart-maintenance api: {exc}", file=sys.stderr)
        return 2

    import uvicorn

    from core.observability.logging import configure_logging

    configure_logging(settings)
    uvicorn.run(
        "apps.api.main:create_app",
        factory=True,
        host=settings.api_host,
        port=settings.api_port,
        workers=settings.api_workers,
        access_log=False,
        log_config=None,
        log_level=logging.getLogger().getEffectiveLevel(),
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())

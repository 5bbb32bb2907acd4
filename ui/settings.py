"""The console's own settings (pydantic-settings).

The console is a separate deployable (its own container in compose) that talks to the API only, so it imports
nothing from ``core`` or ``apps`` and carries this small settings object instead of the platform's one:

* ``API_BASE_URL`` — the API it talks to;
* ``SM_CONSOLE_API_KEY`` — its own key (the API registers it at start-up as key ``console`` with the scopes read,
  operate and admin); never the bootstrap key ``SM_API_KEY``;
* ``SM_CONSOLE_TIMEOUT_S`` — the request timeout (ML endpoints get ``SM_CONSOLE_SLOW_TIMEOUT_S``);
* ``SM_MLFLOW_UI_URL`` (or ``MLFLOW_TRACKING_URI``) — where the MLflow UI is, for a link on the Gauntlets page.

In production (``SM_ENV=production``) the development key is refused.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Annotated

from pydantic import AliasChoices, Field, SecretStr, ValidationError, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEV_CONSOLE_API_KEY = "sm-dev-console-key-not-for-production"
"""The development default, the same value as ``core.config.DEV_CONSOLE_API_KEY`` (tests/ui check they agree)."""


class ConsoleConfigurationError(Exception):
    """The console's environment is invalid; the message names the variables (never a secret's value)."""


class ConsoleSettings(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", env_file_encoding="utf-8", extra="ignore")

    env: str = Field("development", validation_alias=AliasChoices("SM_ENV", "sm_env"))
    api_base_url: str = Field("http://127.0.0.1:8000", validation_alias=AliasChoices("API_BASE_URL", "api_base_url"))
    api_key: SecretStr = Field(
        SecretStr(DEV_CONSOLE_API_KEY), validation_alias=AliasChoices("SM_CONSOLE_API_KEY", "sm_console_api_key")
    )
    timeout_s: Annotated[float, Field(gt=0, le=300)] = Field(
        5.0, validation_alias=AliasChoices("SM_CONSOLE_TIMEOUT_S", "sm_console_timeout_s")
    )
    slow_timeout_s: Annotated[float, Field(gt=0, le=600)] = Field(
        30.0, validation_alias=AliasChoices("SM_CONSOLE_SLOW_TIMEOUT_S", "sm_console_slow_timeout_s")
    )
    mlflow_ui_url: str = Field(
        "http://127.0.0.1:5000",
        validation_alias=AliasChoices("SM_MLFLOW_UI_URL", "MLFLOW_TRACKING_URI", "sm_mlflow_ui_url"),
    )

    @model_validator(mode="after")
    def _production_key(self) -> ConsoleSettings:
        if self.env.strip().lower() == "production" and self.api_key.get_secret_value() == DEV_CONSOLE_API_KEY:
            raise ValueError("SM_CONSOLE_API_KEY is the development default; set the console's own key")
        if not self.api_key.get_secret_value():
            raise ValueError("SM_CONSOLE_API_KEY is empty")
        return self


@lru_cache(maxsize=1)
def get_console_settings() -> ConsoleSettings:
    """The settings from the environment (cached; tests call ``get_console_settings.cache_clear()``)."""
    try:
        return ConsoleSettings()
    except ValidationError as exc:
        reasons = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'settings'}: {e['msg']}" for e in exc.errors())
        raise ConsoleConfigurationError(reasons) from None

"""Settings read from WATCHTOWER_* environment variables, built by a function so tests can redirect them."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

# Where the scoring API (`watchtower api`) answers; the demo points its environments' endpoints there.
API_URL_SETTING = "WATCHTOWER_API_URL"


@dataclass(frozen=True)
class Settings:
    home: Path
    database_url: str
    demo: bool
    base_url: str
    api_url: str

    @property
    def artifacts_dir(self) -> Path:
        return self.home / "artifacts"

    @property
    def reports_dir(self) -> Path:
        return self.home / "reports"

    @property
    def drop_dir(self) -> Path:
        return self.home / "drop"


def _truthy(value: str | None) -> bool:
    return (value or "").strip().lower() in {"1", "true", "yes", "on"}


def get_settings() -> Settings:
    """Read the settings from the environment (cheap; call it where needed, never cache globally)."""
    home = Path(os.environ.get("WATCHTOWER_HOME", "./data")).expanduser().resolve()
    url = os.environ.get("WATCHTOWER_DATABASE_URL") or f"sqlite:///{home / 'watchtower.db'}"
    return Settings(
        home=home,
        database_url=url,
        demo=_truthy(os.environ.get("WATCHTOWER_DEMO")),
        base_url=os.environ.get("WATCHTOWER_BASE_URL", "http://localhost:8501").rstrip("/"),
        api_url=os.environ.get(API_URL_SETTING, "http://127.0.0.1:8000").rstrip("/"),
    )


def secret(name: str) -> str | None:
    """A secret from the environment, else from .streamlit/secrets.toml (never from the repository)."""
    value = os.environ.get(name)
    if value:
        return value
    path = Path(os.environ.get("WATCHTOWER_SECRETS_FILE", ".streamlit/secrets.toml"))
    if path.is_file():
        import tomllib

        with path.open("rb") as fh:
            data = tomllib.load(fh)
        found = data.get(name)
        return str(found) if found is not None else None
    return None

"""Settings from the environment (and a ``.env`` file), in one object.

Use :func:`get_settings` rather than reading ``os.environ``: it is cached and
tests can override it with :func:`reset_settings`.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """Runtime settings.

    Parameters are read from environment variables (names as given by each
    field's ``alias``) and from ``.env`` in the working directory.
    """

    model_config = SettingsConfigDict(env_file=".env", extra="ignore", populate_by_name=True)

    database_url: str | None = Field(
        default=None,
        alias="DATABASE_URL",
        description="SQLAlchemy/psycopg URL. Unset: the project-managed embedded cluster.",
    )
    data_dir: Path = Field(
        default=Path(".geo"),
        alias="GEO_DATA_DIR",
        description="Where the embedded cluster, logs and job outputs live.",
    )
    api_port: int = Field(default=8000, alias="GEO_API_PORT")
    api_host: str = Field(default="127.0.0.1", alias="GEO_API_HOST")
    dashboard_port: int = Field(default=8501, alias="GEO_DASHBOARD_PORT")
    api_url: str | None = Field(
        default=None, alias="GEO_API_URL",
        description="Base URL the dashboard uses; default http://127.0.0.1:GEO_API_PORT.",
    )
    pg_port: int = Field(default=54329, alias="GEO_PG_PORT",
                         description="TCP port of the embedded cluster (loopback only).")
    secret_key: str | None = Field(default=None, alias="GEO_SECRET_KEY",
                                   description="JWT signing key; required outside --demo.")
    cors_origins: str = Field(default="", alias="GEO_CORS_ORIGINS",
                              description="Comma-separated allowed origins.")
    demo: bool = Field(default=False, alias="GEO_DEMO",
                       description="Demo mode: synthetic data and well-known demo credentials are allowed.")
    token_ttl_minutes: int = Field(default=480, alias="GEO_TOKEN_TTL_MINUTES")
    catalogue_path: Path | None = Field(
        default=None, alias="GEO_CATALOGUE",
        description="JSON event catalogue (categories, SLAs, 权责清单); default: the one shipped in geo/data.",
    )
    login_rate_per_minute: int = Field(default=10, alias="GEO_LOGIN_RATE_PER_MINUTE",
                                       description="Failed logins allowed per username and client per window.")
    login_window_seconds: float = Field(
        default=60.0, alias="GEO_LOGIN_WINDOW_SECONDS", gt=0,
        description="Window of the failed-login limit (per username and client).")
    login_backoff_seconds: float = Field(
        default=60.0, alias="GEO_LOGIN_BACKOFF_SECONDS", gt=0,
        description="First back-off once a window's failures reach the limit; doubled for each further one.")
    login_backoff_max_seconds: float = Field(
        default=900.0, alias="GEO_LOGIN_BACKOFF_MAX_SECONDS", gt=0,
        description="Longest back-off: repeated windows of failures double it up to this, never more.")
    trusted_proxies: str = Field(
        default="", alias="GEO_TRUSTED_PROXIES",
        description="Comma-separated addresses/CIDRs of reverse proxies whose X-Forwarded-For is believed; "
                    "from anyone else the header is ignored.")
    hash_concurrency: int = Field(
        default=2, alias="GEO_HASH_CONCURRENCY", ge=1,
        description="Password checks (argon2, 19 MiB each) run at once per API process; more logins wait.")
    batch_max_points: int = Field(default=1_000_000, alias="GEO_BATCH_MAX_POINTS")
    max_body_bytes: int = Field(default=1_000_000, alias="GEO_MAX_BODY_BYTES", ge=1,
                                description="Largest request body of an ordinary route (413 beyond, before reading).")
    max_batch_body_bytes: int = Field(default=50_000_000, alias="GEO_MAX_BATCH_BODY_BYTES", ge=1,
                                      description="Largest request body of a batch route (GEO_BATCH_BODY_PATHS).")
    batch_body_paths: str = Field(
        default="/v1/lookup/batch,/v1/workers/*/positions,/v1/plans/import*,/v1/jurisdictions/*/plans/import*",
        alias="GEO_BATCH_BODY_PATHS",
        description="Comma-separated fnmatch patterns of routes that take GEO_MAX_BATCH_BODY_BYTES.")
    access_log: str = Field(default="default", alias="GEO_ACCESS_LOG", pattern="^(all|default|off)$",
                            description="all | default (writes, errors, slow requests) | off")
    timezone: str = Field(default="Asia/Shanghai", alias="GEO_TZ",
                          description="Time zone of calendar days in KPIs and trends ('today').")
    events_premake_months: int = Field(
        default=4, alias="GEO_EVENTS_PREMAKE_MONTHS", ge=1, le=36,
        description="Monthly partitions of the events table kept ready ahead of the current month.")
    events_retention_months: int = Field(
        default=0, alias="GEO_EVENTS_RETENTION_MONTHS", ge=0,
        description="0 keeps every event; N deletes (with their work orders, transitions and 督办) the months of "
                    "events that ended more than N months ago, by dropping their partitions.")
    merge_radius_m: float = Field(default=100.0, alias="GEO_MERGE_RADIUS_M", gt=0, le=5000,
                                  description="并单: a 12345 order about the same sub-type within this distance …")
    merge_window_hours: float = Field(default=72.0, alias="GEO_MERGE_WINDOW_HOURS", gt=0, le=24 * 90,
                                      description="… of an open event created within this many hours is linked to it.")
    hotline_max_attempts: int = Field(
        default=8, alias="GEO_HOTLINE_MAX_ATTEMPTS", ge=1, le=50,
        description="A status webhook to the 12345 hotline is POSTed at most this many times before it is failed.")
    hotline_backoff_s: float = Field(
        default=30.0, alias="GEO_HOTLINE_BACKOFF_S", gt=0, le=3600,
        description="Wait before the first retry of a webhook; doubled after each failed attempt …")
    hotline_backoff_max_s: float = Field(
        default=3600.0, alias="GEO_HOTLINE_BACKOFF_MAX_S", gt=0, le=86400,
        description="… up to this many seconds.")
    hotline_timeout_s: float = Field(
        default=10.0, alias="GEO_HOTLINE_TIMEOUT_S", gt=0, le=120,
        description="Seconds a webhook receiver has to answer one POST.")
    publish_switch_seconds: float = Field(
        default=3.0, alias="GEO_PUBLISH_SWITCH_SECONDS",
        description="A published plan takes effect this many seconds later, at the same instant in every API "
                    "process (they load it ahead; building the index takes about 1 s per 700 grids on 2 cores).",
    )

    @property
    def data_path(self) -> Path:
        """The data dir as an absolute path."""
        return self.data_dir.expanduser().resolve()

    @property
    def resolved_api_url(self) -> str:
        return self.api_url or f"http://127.0.0.1:{self.api_port}"


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings (cached)."""
    return Settings()


def reset_settings() -> None:
    """Forget cached settings so the next :func:`get_settings` re-reads the environment."""
    get_settings.cache_clear()

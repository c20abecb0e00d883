"""The one settings object. Read once at start-up from NOVA_* environment variables."""

from __future__ import annotations

import json
import os
import re
from enum import StrEnum
from pathlib import Path
from typing import Any

from pydantic import Field, SecretStr, ValidationError, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

ENV_PREFIX = "NOVA_"
# Variables with these prefixes belong to the test and benchmark harnesses, not to Settings.
_FOREIGN_PREFIXES = ("NOVA_TEST_", "NOVA_BENCH_", "NOVA_REQUIRE_SERVICES")
# Kubernetes injects <SERVICE>_SERVICE_HOST/_PORT variables for every Service in a namespace;
# a Service named nova-... would otherwise look like a misspelt setting.
_SERVICE_LINK = re.compile(r"^NOVA_\w+_(SERVICE_HOST|SERVICE_PORT\w*|PORT(_\d+_(TCP|UDP)\w*)?)$")


# URL schemes of model stores pyarrow.fs.FileSystem.from_uri resolves.
MODEL_STORE_SCHEMES = ("file", "s3", "gs", "gcs", "hdfs", "abfs", "abfss")


class ConfigError(Exception):
    """A setting is missing or wrong; the message names every offending NOVA_* variable."""


class Backend(StrEnum):
    EMBEDDED = "embedded"  # SQLite for everything, no servers
    PRODUCTION = "production"  # PostgreSQL for events, Redis for hot state and the ingest buffer


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, extra="forbid", frozen=True)

    data_dir: Path = Field(Path("data"), description="Where embedded SQLite files live.")
    database_url: SecretStr | None = Field(
        None,
        description="postgresql://user:pass@host/db for production; unset (or sqlite:///path) "
        "for the embedded store under data_dir.",
    )
    redis_url: SecretStr | None = Field(None, description="redis://host:port/db; production only.")
    redis_prefix: str = Field("nova", pattern=r"^[A-Za-z0-9_.-]{1,40}$")
    operator_token: SecretStr | None = Field(
        None, description="Bearer token for the operator admin API; required in production."
    )

    shopify_api_secret: SecretStr | None = Field(
        None,
        description="The Shopify app's client secret: the key of webhook HMACs. Unset, every "
        "webhook is refused with 401.",
    )
    shopify_api_secret_previous: SecretStr | None = Field(
        None,
        description="The client secret before a rotation: Shopify may keep signing with it for "
        "a while, so webhooks signed with it are accepted too.",
    )

    http_host: str = "127.0.0.1"
    http_port: int = Field(8000, ge=1, le=65535)

    max_batch_events: int = Field(100, ge=1, le=5000)
    max_body_bytes: int = Field(512 * 1024, ge=1024, le=16 * 1024 * 1024)
    rate_limit_events_per_s: int = Field(10_000, ge=1, description="Per shop, fixed 1 s windows.")
    dedupe_window_s: int = Field(7 * 86400, ge=60)
    max_event_age_s: int = Field(7 * 86400, ge=60)
    max_clock_skew_s: int = Field(86400, ge=0)
    session_ttl_s: int = Field(14 * 86400, ge=60)
    pending_ttl_s: int = Field(1800, ge=1)
    shop_cache_ttl_s: float = Field(5.0, ge=0)
    cors_allow_origins: list[str] = Field(default_factory=lambda: ["*"])

    writer_read_count: int = Field(
        200, ge=1, description="Stream entries (one per ingest request) per PostgreSQL write."
    )
    writer_block_ms: int = Field(1000, ge=1, description="How long a writer waits for new entries.")

    stats_refresh_s: float = Field(
        900, ge=0, description="How often co-occurrence statistics are recomputed; 0: never."
    )
    stats_window_days: int = Field(90, ge=1, description="Events the statistics are built from.")
    recs_cache_ttl_s: float = Field(
        10, ge=0, description="How long a context-only answer may be reused; 0: no cache."
    )

    model_store: str = Field(
        "",
        description="Where the model registry keeps artifacts: a local directory, or a "
        "file://, s3:// or gs:// URL (pyarrow.fs). Unset or empty: <data_dir>/models. Serving "
        "replicas on several machines need a store they all reach (object storage).",
    )

    @model_validator(mode="before")
    @classmethod
    def _default_model_store(cls, data: Any) -> Any:
        if isinstance(data, dict) and not str(data.get("model_store") or "").strip():
            data = {**data, "model_store": str(Path(data.get("data_dir") or "data") / "models")}
        return data

    @model_validator(mode="after")
    def _check_backend(self) -> Settings:
        scheme, sep, _ = self.model_store.partition("://")
        if sep and scheme not in MODEL_STORE_SCHEMES:
            raise ValueError(
                f"NOVA_MODEL_STORE must be a local path or a URL with one of the schemes "
                f"{', '.join(MODEL_STORE_SCHEMES)}; got {scheme}://"
            )
        if self.rate_limit_events_per_s < self.max_batch_events:
            raise ValueError(
                "NOVA_RATE_LIMIT_EVENTS_PER_S must be at least NOVA_MAX_BATCH_EVENTS, "
                "or a full batch could never be accepted"
            )
        for name in ("shopify_api_secret", "shopify_api_secret_previous"):
            secret: SecretStr | None = getattr(self, name)
            # Anyone can compute an HMAC keyed with an empty secret.
            if secret is not None and not secret.get_secret_value().strip():
                raise ValueError(f"{ENV_PREFIX}{name.upper()} is empty; unset it or set the secret")
        if self.shopify_api_secret_previous is not None and self.shopify_api_secret is None:
            raise ValueError(
                "NOVA_SHOPIFY_API_SECRET_PREVIOUS is set without NOVA_SHOPIFY_API_SECRET: "
                "set the current secret too"
            )
        url = self.database_url.get_secret_value() if self.database_url else ""
        if url and not url.startswith(("postgresql://", "postgres://", "sqlite:///")):
            raise ValueError(
                "NOVA_DATABASE_URL must start with postgresql://, postgres:// or sqlite:///"
            )
        if self.backend is Backend.PRODUCTION:
            if self.redis_url is None:
                raise ValueError(
                    "NOVA_REDIS_URL is required when NOVA_DATABASE_URL is PostgreSQL: "
                    "Redis holds the durable ingest buffer"
                )
            if self.operator_token is None:
                raise ValueError("NOVA_OPERATOR_TOKEN is required with PostgreSQL (production)")
        elif self.redis_url is not None:
            raise ValueError(
                "NOVA_REDIS_URL is set but NOVA_DATABASE_URL is not PostgreSQL; "
                "the embedded backend keeps everything in SQLite"
            )
        return self

    @property
    def webhook_secrets(self) -> list[bytes]:
        """The secrets a webhook HMAC may be keyed with: current first, then previous."""
        secrets = (self.shopify_api_secret, self.shopify_api_secret_previous)
        return [s.get_secret_value().encode() for s in secrets if s is not None]

    @property
    def backend(self) -> Backend:
        url = self.database_url.get_secret_value() if self.database_url else ""
        return Backend.PRODUCTION if url.startswith("postgres") else Backend.EMBEDDED

    @property
    def sqlite_path(self) -> Path:
        url = self.database_url.get_secret_value() if self.database_url else ""
        if url.startswith("sqlite:///"):
            return Path(url.removeprefix("sqlite:///"))
        return self.data_dir / "nova.sqlite3"

    def env(self) -> dict[str, str]:
        """These settings as NOVA_* variables, to hand to Ray workers and subprocesses."""
        out: dict[str, str] = {}
        for name, value in self.model_dump().items():
            if value is None:
                continue
            if isinstance(value, SecretStr):
                value = value.get_secret_value()
            if isinstance(value, list):
                value = json.dumps(value)
            out[ENV_PREFIX + name.upper()] = str(value)
        return out


def load_settings(environ: dict[str, str] | None = None, **overrides: Any) -> Settings:
    """Build Settings from the environment, failing with every bad NOVA_* variable named."""
    environ = dict(os.environ if environ is None else environ)
    known = {ENV_PREFIX + name.upper() for name in Settings.model_fields}
    unknown = sorted(
        k
        for k in environ
        if k.startswith(ENV_PREFIX)
        and k not in known
        and not k.startswith(_FOREIGN_PREFIXES)
        and not _SERVICE_LINK.match(k)
    )
    if unknown:
        raise ConfigError(
            "unknown setting(s): "
            + ", ".join(unknown)
            + " (known: "
            + ", ".join(sorted(known))
            + ")"
        )
    values: dict[str, Any] = {}
    for name in Settings.model_fields:
        raw = environ.get(ENV_PREFIX + name.upper())
        if raw is not None:
            values[name] = raw
    values.update(overrides)
    try:
        # model_validate skips pydantic-settings' own sources: the values come from our copy of
        # the environment only, so an environ argument (tests, subprocesses) is the whole truth.
        return Settings.model_validate(_decode(values))
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            field = ".".join(str(p) for p in err["loc"])
            msg = err["msg"].removeprefix("Value error, ")
            problems.append(f"{ENV_PREFIX + field.upper()}: {msg}" if field else msg)
        raise ConfigError("invalid settings: " + "; ".join(problems)) from None


def _decode(values: dict[str, Any]) -> dict[str, Any]:
    """Lists arrive from the environment as JSON or comma-separated text."""
    raw = values.get("cors_allow_origins")
    if isinstance(raw, str):
        text = raw.strip()
        if text.startswith("["):
            try:
                values["cors_allow_origins"] = json.loads(text)
            except json.JSONDecodeError as exc:
                raise ConfigError(f"NOVA_CORS_ALLOW_ORIGINS: not a JSON list: {exc}") from None
        else:
            values["cors_allow_origins"] = [p.strip() for p in text.split(",") if p.strip()]
    return values

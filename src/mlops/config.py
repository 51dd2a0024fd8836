"""Platform settings: environment variables prefixed ``MLOPS_``, over an optional YAML file.

The YAML file has nested sections (``database: {url: ...}``); each nested key is
flattened with ``_`` onto a field here (``database.url`` -> ``database_url``), so
the file and the environment name the same settings. Environment variables win.
"""

from __future__ import annotations

import ipaddress
import os
import re
import secrets
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

from mlops.errors import ConfigError

Environment = Literal["development", "staging", "production"]
MIN_SECRET_KEY_BYTES = 32
MIN_METRICS_TOKEN_CHARS = 32
_ORIGIN = re.compile(
    r"https?://[A-Za-z0-9.-]+(:[0-9]{1,5})?|https?://\[[0-9A-Fa-f:.]+\](:[0-9]{1,5})?"
)
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


class Settings(BaseSettings):
    """Every setting of the platform. Each field maps to ``MLOPS_<FIELD>``."""

    model_config = SettingsConfigDict(
        env_prefix="MLOPS_", extra="forbid", validate_default=True, frozen=True
    )

    environment: Environment = Field(
        "development",
        description="development, staging or production. Outside development no secret "
        "is generated: the secret key and admin password must be given.",
    )
    data_dir: Path = Field(
        Path(".mlops"), description="Where the embedded database, secret key and artifacts live."
    )
    database_url: str | None = Field(
        None,
        description="SQLAlchemy URL. Default: SQLite at DATA_DIR/mlops.db. "
        "postgresql:// URLs use psycopg 3.",
    )
    database_pool_size: int = Field(10, ge=1, le=200, description="Connections kept open.")
    database_max_overflow: int = Field(10, ge=0, le=200, description="Extra connections at peak.")
    database_pool_timeout: float = Field(
        10.0, gt=0, le=300, description="Seconds to wait for a free connection before failing."
    )
    redis_url: str | None = Field(
        None,
        description="redis:// URL for shared caches, revocation and rate limits. "
        "Unset: in-process equivalents (one process only).",
    )
    redis_namespace: str = Field(
        "mlops:",
        pattern=r"^[A-Za-z0-9:_.-]{1,64}$",
        description="Prefix of every Redis key, so environments can share one Redis.",
    )
    redis_outage_grace_seconds: float = Field(
        30.0,
        ge=0,
        le=3600,
        description="While Redis is unreachable, how long after reading it a process still "
        "trusts a credential's state (revoked or not, user, API key); older state is read "
        "from the database again, and if that is down too the request answers 503.",
    )
    revocation_purge_interval_seconds: float = Field(
        3600.0,
        ge=10,
        le=7 * 24 * 3600,
        description="How often the API deletes logged-out tokens that have expired anyway "
        "from the database.",
    )
    secret_key: SecretStr | None = Field(
        None,
        description="Key that signs access tokens, at least 32 bytes. Generated and kept in "
        "DATA_DIR/secret_key in development; required in staging and production.",
    )
    secret_key_previous: SecretStr | None = Field(
        None,
        description="Verify-only signing keys, comma-separated, each at least 32 bytes: "
        "login tokens, browser sessions and backup manifests signed with one are still "
        "accepted, while new ones are signed with MLOPS_SECRET_KEY. Rotating, set the old "
        "key here and remove it one MLOPS_ACCESS_TOKEN_TTL_SECONDS after every process has "
        "the new key (docs/runbooks/operations.md).",
    )
    admin_username: str = Field(
        "admin", pattern=r"^[a-zA-Z0-9][a-zA-Z0-9._-]{1,62}$", description="First admin's name."
    )
    admin_password: SecretStr | None = Field(
        None,
        description="First admin's password, used while no user exists: `mlops db upgrade` "
        "(the migration Job), `mlops up` and `mlops api` make the admin with it. Development: "
        "`mlops up` generates and prints one if unset. Staging and production: `mlops up` "
        "requires it; wherever given it must satisfy the password policy.",
    )
    access_token_ttl_seconds: int = Field(
        3600, ge=60, le=7 * 24 * 3600, description="Lifetime of a login token."
    )
    login_failures_per_pair: int = Field(
        5,
        ge=1,
        le=1000,
        description="Wrong passwords for one username from one client address before that "
        "pair must wait; each further failure doubles the wait (1 s, 2 s, 4 s... up to the "
        "window).",
    )
    login_failures_per_client: int = Field(
        20,
        ge=1,
        le=100_000,
        description="Wrong passwords from one client address, over all usernames, before that "
        "address must wait (doubling likewise): it stops sprays across usernames.",
    )
    login_failures_per_user: int = Field(
        100,
        ge=1,
        le=1_000_000,
        description="Wrong passwords for one username, over all addresses, before it counts as "
        "under attack: then an address that fails for it waits the whole window. Addresses "
        "that have not failed still log in at once; nobody is locked out.",
    )
    login_window_seconds: int = Field(
        900,
        ge=1,
        le=86400,
        description="How long failures count, from the first one; also the longest wait.",
    )
    trusted_proxies: str = Field(
        "",
        description="Comma-separated CIDRs of proxies whose X-Forwarded-For is believed (the "
        "client is the right-most address not in them). Empty: the peer address is the client.",
    )
    api_key_max_ttl_days: int = Field(
        90,
        ge=1,
        le=3650,
        description="Longest lifetime of an API key; a key created without expires_at gets it.",
    )
    password_hash_memory_kib: int = Field(
        19456,
        ge=19456,
        le=262144,
        description="argon2id memory cost. OWASP's minimum (19 MiB) is the floor.",
    )
    password_hash_time_cost: int = Field(2, ge=2, le=10, description="argon2id iterations.")
    password_hash_concurrency: int = Field(
        2, ge=1, le=64, description="Password hashes computed at once; the rest wait their turn."
    )
    artifact_store: str | None = Field(
        None,
        description="Where model files live: file://PATH or s3://BUCKET/PREFIX. "
        "Default: file://DATA_DIR/artifacts.",
    )
    s3_endpoint_url: str | None = Field(
        None,
        description="S3-compatible endpoint (MinIO, SeaweedFS...). Unset: AWS S3. Credentials "
        "come from the standard AWS variables (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY).",
    )
    s3_region: str | None = Field(None, description="S3 region (AWS_DEFAULT_REGION otherwise).")
    max_upload_bytes: int = Field(
        2 * 1024**3, ge=1024, le=64 * 1024**3, description="Largest model file accepted (bytes)."
    )
    upload_validation_memory_mb: int = Field(
        2048,
        ge=512,
        le=1024 * 1024,
        description="Address space (RLIMIT_AS, MiB) of the separate process that validates an "
        "uploaded model; beyond it the upload is a 422 naming the limit.",
    )
    upload_validation_timeout_seconds: float = Field(
        60.0,
        ge=1,
        le=3600,
        description="Wall-clock limit of an upload's validation process; it is killed after "
        "this long and the upload is a 422 naming the limit.",
    )
    default_model: str | None = Field(
        None,
        description="Model served by POST /api/v1/models/predict until an admin sets one with "
        "PUT /api/v1/settings/default-model.",
    )
    max_predict_rows: int = Field(
        10_000, ge=1, le=1_000_000, description="Most rows in one prediction request (413 beyond)."
    )
    max_predict_body_bytes: int = Field(
        16 * 1024**2, ge=1024, le=1024**3, description="Largest prediction request body."
    )
    batching: bool = Field(True, description="Adaptive batching of concurrent predictions.")
    max_batch_size: int = Field(
        1024, ge=1, le=100_000, description="Most rows the batcher merges into one runtime call."
    )
    max_batch_time_ms: float = Field(
        0.0,
        ge=0,
        le=1000,
        description="How long a batch waits for more requests. 0: take what is queued, "
        "never wait (batches still form under load).",
    )
    predict_fast_path: bool = Field(
        True,
        description="Answer the predict endpoints in plain ASGI, in front of FastAPI "
        "(same behaviour, about twice the throughput).",
    )
    catalog_poll_seconds: float = Field(
        15.0,
        ge=0.2,
        le=3600,
        description="How often model servers re-read the registry as a backstop; changes "
        "arrive at once through Redis pub/sub (in-process in mlops up). Each re-read pauses "
        "the event loop for tens of milliseconds, so keep it well above a second.",
    )
    shutdown_delay_seconds: float = Field(
        0.0,
        ge=0,
        le=120,
        description="After SIGTERM, answer 503 on readiness this long before closing, so load "
        "balancers stop sending traffic (use ~5 in Kubernetes).",
    )
    worker_lease_seconds: float = Field(
        30.0,
        ge=1,
        le=3600,
        description="How long a worker's claim on a job's shard lasts without a heartbeat "
        "(sent every third of it); a worker that dies loses its shard after this long.",
    )
    worker_poll_seconds: float = Field(
        1.0, ge=0.05, le=60, description="How often an idle worker looks for work."
    )
    worker_grace_seconds: float = Field(
        25.0,
        ge=0,
        le=3600,
        description="On SIGTERM, how long a worker may finish its shard before it gives "
        "it back to the queue (keep it under Kubernetes' terminationGracePeriodSeconds).",
    )
    job_max_attempts: int = Field(
        3, ge=1, le=100, description="Attempts of a job's shard before the job fails."
    )
    job_retry_backoff_seconds: float = Field(
        2.0,
        ge=0,
        le=3600,
        description="Wait before a failed shard is tried again; doubles with each attempt.",
    )
    job_s3_buckets: str = Field(
        "",
        pattern=r"^[a-z0-9.,-]*$",
        description="Comma-separated S3 buckets (at MLOPS_S3_ENDPOINT_URL) that jobs may "
        "read and write with s3:// URIs. Empty: none; jobs use the platform's storage.",
    )
    drift_sample_rate: float = Field(
        0.01, ge=0, le=1, description="Share of prediction requests sampled for drift."
    )
    drift_samples_per_minute: int = Field(
        600,
        ge=0,
        le=1_000_000,
        description="Most rows sampled per model version and minute, whatever the traffic.",
    )
    drift_interval_seconds: float = Field(
        3600, ge=10, le=7 * 86400, description="How often workers compute drift reports."
    )
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field(
        "INFO", description="DEBUG, INFO, WARNING or ERROR."
    )
    log_json: bool = Field(True, description="JSON log lines (false: plain text for a terminal).")
    access_log: bool = Field(True, description="One log line per HTTP request.")
    metrics_token: SecretStr | None = Field(
        None,
        description="Bearer token that Prometheus sends to read /metrics (at least 32 "
        "characters). Required outside development; unset in development, /metrics is open "
        "to anyone who reaches the port and a warning is logged.",
    )
    cors_origins: str = Field(
        "",
        description="Comma-separated origins (scheme://host[:port]) whose web pages may call "
        "the API from a browser (CORS). Empty: no cross-origin calls.",
    )
    prometheus_url: str | None = Field(
        None,
        pattern=r"^https?://[^\s]+$",
        description="Prometheus the API reads the web UI's live traffic charts from "
        "(several model-server replicas). Unset: the charts show what the model server in "
        "this process saw (mlops up).",
    )

    @field_validator("database_url")
    @classmethod
    def _known_database(cls, value: str | None) -> str | None:
        if value is None:
            return None
        scheme = value.split("://", 1)[0]
        if not (scheme.startswith("sqlite") or scheme.startswith("postgresql")):
            raise ValueError("expected a sqlite:/// or postgresql:// URL")
        return value

    @field_validator("redis_url")
    @classmethod
    def _known_redis(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("redis://", "rediss://", "unix://")):
            raise ValueError("expected a redis://, rediss:// or unix:// URL")
        return value or None

    @field_validator("metrics_token")
    @classmethod
    def _long_metrics_token(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and len(value.get_secret_value()) < MIN_METRICS_TOKEN_CHARS:
            raise ValueError(
                f"must be at least {MIN_METRICS_TOKEN_CHARS} characters; generate one with: "
                "python -c 'import secrets; print(secrets.token_urlsafe(32))'"
            )
        return value

    @field_validator("cors_origins")
    @classmethod
    def _known_origins(cls, value: str) -> str:
        return ",".join(parse_origins(value))

    @property
    def cors_origin_list(self) -> tuple[str, ...]:
        return parse_origins(self.cors_origins)

    @field_validator("trusted_proxies")
    @classmethod
    def _known_networks(cls, value: str) -> str:
        return ",".join(str(network) for network in parse_networks(value))

    @property
    def trusted_proxy_networks(self) -> tuple[IPNetwork, ...]:
        return parse_networks(self.trusted_proxies)

    @property
    def job_s3_bucket_list(self) -> frozenset[str]:
        return frozenset(b.strip() for b in self.job_s3_buckets.split(",") if b.strip())

    @property
    def resolved_artifact_store(self) -> str:
        return self.artifact_store or f"file://{(self.data_dir / 'artifacts').resolve()}"

    @property
    def is_development(self) -> bool:
        return self.environment == "development"

    @property
    def resolved_database_url(self) -> str:
        """The async SQLAlchemy URL actually used."""
        url = self.database_url or f"sqlite:///{(self.data_dir / 'mlops.db').resolve()}"
        return async_database_url(url)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # Environment first, then the YAML file passed as init kwargs.
        return env_settings, init_settings


def parse_origins(text: str) -> tuple[str, ...]:
    """``"https://a.example, http://localhost:3000"`` -> origins, as browsers send them."""
    origins = []
    for item in (part.strip() for part in text.split(",")):
        if not item:
            continue
        # Exact origins only: a wildcard would let every site's pages call the API.
        if not _ORIGIN.fullmatch(item):
            raise ValueError(
                f"{item!r} is not an origin such as https://ui.example.com or "
                "http://localhost:3000 (scheme and host, optional port, no path or wildcard)"
            )
        origins.append(item.lower())
    return tuple(origins)


def parse_networks(text: str) -> tuple[IPNetwork, ...]:
    """``"10.0.0.0/8, ::1"`` -> networks; a plain address is a /32 (or /128)."""
    networks = []
    for item in (part.strip() for part in text.split(",")):
        if not item:
            continue
        try:
            # strict: "10.1.2.3/8" is refused, not silently widened to 10.0.0.0/8.
            networks.append(ipaddress.ip_network(item, strict=True))
        except ValueError as exc:
            raise ValueError(
                f"{item!r} is not a CIDR such as 10.0.0.0/8 or 127.0.0.6/32 ({exc})"
            ) from None
    return tuple(networks)


def async_database_url(url: str) -> str:
    """Pick the async driver for a user-given URL."""
    scheme, rest = url.split("://", 1)
    if scheme in ("sqlite", "sqlite+aiosqlite"):
        return f"sqlite+aiosqlite://{rest}"
    if scheme in ("postgresql", "postgres", "postgresql+psycopg", "postgresql+psycopg_async"):
        return f"postgresql+psycopg://{rest}"
    return url


def sync_database_url(url: str) -> str:
    """The same database through a blocking driver (for Alembic)."""
    scheme, rest = url.split("://", 1)
    if scheme.startswith("sqlite"):
        return f"sqlite://{rest}"
    return f"postgresql+psycopg://{rest}"


def flatten_yaml(data: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """``{"database": {"url": x}}`` -> ``{"database_url": x}``."""
    flat: dict[str, Any] = {}
    for key, value in data.items():
        name = f"{prefix}{key}".replace("-", "_")
        if isinstance(value, dict):
            flat.update(flatten_yaml(value, f"{name}_"))
        else:
            flat[name] = value
    return flat


def read_yaml_config(path: Path) -> dict[str, Any]:
    try:
        raw = yaml.safe_load(path.read_text())
    except FileNotFoundError:
        raise ConfigError(f"config file {path} does not exist") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"config file {path} is not valid YAML: {exc}") from None
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise ConfigError(f"config file {path} must hold a mapping of settings")
    flat = flatten_yaml(raw)
    unknown = sorted(set(flat) - set(Settings.model_fields))
    if unknown:
        raise ConfigError(
            f"config file {path}: unknown setting(s) {', '.join(unknown)}; "
            f"known settings: {', '.join(sorted(Settings.model_fields))}"
        )
    return flat


def _describe(error: Any) -> str:
    field = ".".join(str(part) for part in error["loc"]) or "settings"
    env = f"MLOPS_{field.upper()}"
    return f"{env}: {error['msg']}"


# MLOPS_* variables that are not server settings: the CLI's client and the deployment
# scripts read them, and the test suite's own start with MLOPS_TEST_.
CLIENT_VARIABLES = frozenset(
    {"MLOPS_URL", "MLOPS_TOKEN", "MLOPS_CREDENTIALS_FILE", "MLOPS_API_KEY", "MLOPS_USERNAME",
     "MLOPS_PASSWORD"}
)  # fmt: skip
REPLACED_VARIABLES = {
    "MLOPS_LOGIN_MAX_FAILURES_PER_USER": "MLOPS_LOGIN_FAILURES_PER_PAIR and "
    "MLOPS_LOGIN_FAILURES_PER_USER (logins are throttled, never locked out)",
    "MLOPS_LOGIN_MAX_FAILURES_PER_CLIENT": "MLOPS_LOGIN_FAILURES_PER_CLIENT",
    "MLOPS_LOGIN_LOCKOUT_SECONDS": "MLOPS_LOGIN_WINDOW_SECONDS",
}


def check_environment(environ: Mapping[str, str]) -> None:
    """Refuse MLOPS_* variables that name no setting: a misspelt or renamed setting would
    otherwise be ignored without a word, and the operator would believe it applied."""
    known = {f"MLOPS_{name.upper()}" for name in Settings.model_fields} | CLIENT_VARIABLES
    unknown = sorted(
        name
        for name in environ
        if name.startswith("MLOPS_") and not name.startswith("MLOPS_TEST_") and name not in known
    )
    if unknown:
        reasons = [
            f"{name} was replaced by {REPLACED_VARIABLES[name]}"
            if name in REPLACED_VARIABLES
            else f"{name} is not a setting"
            for name in unknown
        ]
        raise ConfigError(
            f"unknown environment variable(s): {'; '.join(reasons)}. The settings are listed "
            "in the README (Configuration); unset or rename these."
        )


def load_settings(config_file: Path | None = None, **overrides: Any) -> Settings:
    """Read and validate settings; raises ConfigError naming each bad setting."""
    check_environment(os.environ)
    values: dict[str, Any] = read_yaml_config(config_file) if config_file else {}
    values.update({k: v for k, v in overrides.items() if v is not None})
    try:
        settings = Settings(**values)
    except ValidationError as exc:
        details = "; ".join(_describe(err) for err in exc.errors())
        raise ConfigError(f"invalid settings: {details}") from None
    return settings


def previous_secret_keys(settings: Settings) -> tuple[str, ...]:
    """The verify-only keys of a rotation (MLOPS_SECRET_KEY_PREVIOUS), as long as the
    signing key must be. An empty value means none (a Secret's key may be left empty)."""
    if settings.secret_key_previous is None:
        return ()
    # Split only: a key is used byte for byte, as MLOPS_SECRET_KEY is.
    keys = tuple(k for k in settings.secret_key_previous.get_secret_value().split(",") if k)
    for n, key in enumerate(keys, 1):
        if len(key.encode()) < MIN_SECRET_KEY_BYTES:
            raise ConfigError(
                f"MLOPS_SECRET_KEY_PREVIOUS: key {n} of {len(keys)} is shorter than "
                f"{MIN_SECRET_KEY_BYTES} bytes; it must be a former MLOPS_SECRET_KEY "
                "(several are separated by commas)"
            )
    return keys


def ensure_secret_key(settings: Settings) -> str:
    """The signing key: given, or (development only) generated once into the data dir.
    The verify-only keys are checked here too, so every process refuses a bad one."""
    previous_secret_keys(settings)
    if settings.secret_key is not None:
        key = settings.secret_key.get_secret_value()
        if len(key.encode()) < MIN_SECRET_KEY_BYTES:
            raise ConfigError(
                f"MLOPS_SECRET_KEY must be at least {MIN_SECRET_KEY_BYTES} bytes; generate one "
                "with: python -c 'import secrets; print(secrets.token_urlsafe(48))'"
            )
        return key
    if not settings.is_development:
        raise ConfigError(
            f"MLOPS_SECRET_KEY is required when MLOPS_ENVIRONMENT={settings.environment}; "
            "set it to a random value of at least 32 bytes, e.g. "
            "python -c 'import secrets; print(secrets.token_urlsafe(48))'"
        )
    path = settings.data_dir / "secret_key"
    if path.exists():
        return path.read_text().strip()
    settings.data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    key = secrets.token_urlsafe(48)
    path.touch(mode=0o600)
    path.write_text(key)
    return key


def describe_settings() -> list[tuple[str, str, str]]:
    """(env var, default, description) for each setting, for docs and ``--help``."""
    rows = []
    for name, info in Settings.model_fields.items():
        default = "" if info.default is None else str(info.default)
        rows.append((f"MLOPS_{name.upper()}", default, info.description or ""))
    return rows

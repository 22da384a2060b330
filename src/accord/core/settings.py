"""Configuration from `ACCORD_*` environment variables (and an optional `.env`)."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEMO_SECRET = "accord-demo-secret-change-me"  # noqa: S105 - the published demo value, refused in production


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="ACCORD_", env_file=".env", extra="ignore")

    environment: Literal["development", "test", "production"] = "development"
    data_dir: Path = Path("accord-data")
    database_url: str = ""
    secret_key: str = DEMO_SECRET
    analytics_engine: Literal["duckdb", "spark"] = "duckdb"
    # KPI refresh: how often the worker refreshes (0: never), how many months each series spans,
    # how many snapshots are kept on disk
    analytics_refresh_minutes: int = Field(default=1440, ge=0)
    analytics_months: int = Field(default=24, ge=1, le=240)
    analytics_snapshot_keep: int = Field(default=2, ge=1)
    default_region: str = "GB"
    default_currency: str = "EUR"
    default_locale: str = "en_GB"
    max_body_bytes: int = 1_000_000
    page_size_default: int = 50
    page_size_max: int = 500
    session_hours: int = 12
    cookie_secure: bool = False
    embedded_worker: bool = True
    base_url: str = "http://127.0.0.1:8000"
    sqlite_synchronous: Literal["FULL", "NORMAL"] = "FULL"
    pool_size: int = Field(default=10, ge=1)
    # identity resolution: above `upper` link automatically, between the two ask a data steward
    match_upper_threshold: float = Field(default=0.95, gt=0, lt=1)
    match_lower_threshold: float = Field(default=0.60, gt=0, lt=1)
    # automatic links join at most this many profiles into one cluster per run (chaining guard)
    match_max_cluster: int = Field(default=100, ge=2)
    # golden field -> survivorship rule (most_trusted, most_recent, most_complete, most_frequent)
    survivorship: dict[str, str] = Field(default_factory=dict)
    # deterministic rules applied on top of the model: all listed columns present and equal
    match_rules: list[list[str]] = Field(
        default_factory=lambda: [["national_id"], ["email", "last_name"]]
    )
    # outbound e-mail (`accord.core.mail`): an empty host turns sending off (jobs record a skip)
    smtp_host: str = ""
    smtp_port: int = Field(default=587, ge=1, le=65535)
    smtp_from: str = "Accord <accord@localhost>"
    smtp_username: str = ""
    smtp_password: SecretStr = SecretStr("")
    smtp_starttls: bool = True
    smtp_ssl: bool = False  # implicit TLS (port 465) instead of STARTTLS
    smtp_timeout_seconds: float = Field(default=10.0, gt=0)
    # how often the worker turns due activity reminders into notifications (0: never)
    sales_reminder_minutes: int = Field(default=5, ge=0)
    # collected `track` events that create or update a lead (comma-separated, any case); other
    # events stay on the timeline only and cost sales nothing
    sales_lead_events: str = ("Newsletter Signed Up,Whitepaper Downloaded,Demo Requested,"
                              "Webinar Registered,Form Submitted,Trial Started")

    # lead scores: how often open leads are rescored (engagement decays; 0: never) and the
    # half-life of an engagement signal's weight
    sales_rescore_minutes: int = Field(default=1440, ge=0)
    sales_train_minutes: int = Field(default=10080, ge=0)  # retrain on new outcomes (weekly)
    lead_score_half_life_days: float = Field(default=30.0, gt=0)
    # SLA timers and escalation (`accord.service.sla_tasks`, `accord.service.escalation`): how
    # often due warnings/breaches are recorded (0: never), the compound sentiment at or below
    # which a message is negative, the churn risk from which a customer is at risk
    service_sla_check_seconds: int = Field(default=60, ge=0)
    service_negative_sentiment: float = Field(default=-0.3, ge=-1, le=1)
    service_escalation_churn_risk: float = Field(default=0.6, ge=0, le=1)
    # ticket attachments (`accord.service.attachments`): where files live (empty: under the data
    # dir) and the largest file accepted
    attachments_dir: Path | None = None
    attachment_max_bytes: int = Field(default=10 * 1024 * 1024, ge=1)
    # inbound e-mail (`accord mail-in`): the port, the largest message accepted (SMTP SIZE), the
    # support addresses mail is accepted for ("*": any; empty: the ACCORD_SMTP_FROM address) and
    # the messages per hour one sender may send before further mail is deferred (loop guard)
    mail_in_port: int = Field(default=2525, ge=1, le=65535)
    mail_in_max_bytes: int = Field(default=25 * 1024 * 1024, ge=1024)
    mail_in_addresses: str = ""
    mail_in_sender_hourly_limit: int = Field(default=20, ge=1)
    # surveys (`accord.service.surveys`): link lifetime, no second survey to one customer within
    # the cooldown, the kind sent when a ticket is solved ("off": none), schedule sweep interval
    survey_link_days: int = Field(default=14, ge=1, le=365)
    survey_cooldown_days: int = Field(default=30, ge=0)
    survey_ticket_kind: Literal["csat", "nps", "off"] = "csat"
    survey_schedule_minutes: int = Field(default=60, ge=0)

    @property
    def lead_event_names(self) -> frozenset[str]:
        return frozenset(e.strip().casefold() for e in self.sales_lead_events.split(",")
                         if e.strip())

    @model_validator(mode="after")
    def _check(self) -> Settings:
        if self.environment == "production" and self.secret_key == DEMO_SECRET:
            raise ValueError(
                "ACCORD_SECRET_KEY is the demo secret: "
                "set a real secret before running in production"
            )
        if self.environment == "production" and len(self.secret_key) < 32:
            raise ValueError("ACCORD_SECRET_KEY must be at least 32 characters in production")
        if self.match_lower_threshold > self.match_upper_threshold:
            raise ValueError("ACCORD_MATCH_LOWER_THRESHOLD must not exceed the upper threshold")
        return self

    @property
    def effective_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'accord.db').as_posix()}"


@lru_cache
def get_settings() -> Settings:
    return Settings()


def reset_settings() -> None:
    """Forget cached settings (tests and the CLI change the environment)."""
    get_settings.cache_clear()

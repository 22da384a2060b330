"""Source payloads. Secrets never appear in `SourceOut`: only the write key's prefix and whether
a webhook secret is set; the minted values are returned once, by their own endpoints."""

from __future__ import annotations

import json
import re
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from accord.core.contact import InvalidValue, normalize_country
from accord.core.validation import StrictIn

SourceKind = Literal["crm", "billing", "webshop", "support", "marketing", "tracking", "file",
                     "manual"]
# Names appear in webhook URLs (/hooks/{name}) and on every interaction a source creates.
NAME_PATTERN = r"^[a-z0-9][a-z0-9_-]{0,79}$"
MAPPING_MAX_BYTES = 64 * 1024
_NAME = re.compile(NAME_PATTERN)


def _country(value: str | None) -> str | None:
    if value is None:
        return None
    try:
        return normalize_country(value)
    except InvalidValue as exc:
        raise ValueError(str(exc)) from None


def _mapping(value: dict[str, Any] | None) -> dict[str, Any] | None:
    """Column → canonical field (or options); only its shape and size are checked here."""
    if value is None:
        return None
    if any(not key.strip() or len(key) > 200 for key in value):
        raise ValueError("mapping keys must be non-empty column names of at most 200 characters")
    if len(json.dumps(value, default=str)) > MAPPING_MAX_BYTES:
        raise ValueError(f"the mapping is larger than {MAPPING_MAX_BYTES // 1024} KB")
    return value


class SourceFields(StrictIn):
    name: str = Field(min_length=1, max_length=80, pattern=NAME_PATTERN,
                      description="Lower-case letters, digits, - and _; used in /hooks/{name}")
    kind: SourceKind
    trust_rank: int = Field(default=50, ge=1, le=1000, description="1 is the most trusted")
    description: str = Field(default="", max_length=300)
    mapping: dict[str, Any] = Field(
        default_factory=dict,
        description="Source column → canonical field (`first_name`, `cf.<key>`, `order.total`, "
                    "`interaction.subject`, ...)")
    default_country: str | None = Field(
        default=None, description="ISO 3166-1 alpha-2 country for national phone numbers and "
                                  "addresses without a country")

    _c = field_validator("default_country")(_country)
    _m = field_validator("mapping")(_mapping)


class SourceCreate(SourceFields):
    pass


class SourceUpdate(SourceFields):
    """Every field optional; `active=false` deactivates the source (its keys stop working)."""

    name: str | None = Field(default=None, min_length=1, max_length=80,  # type: ignore[assignment]
                             pattern=NAME_PATTERN)
    kind: SourceKind | None = None  # type: ignore[assignment]
    trust_rank: int | None = Field(default=None, ge=1, le=1000)  # type: ignore[assignment]
    description: str | None = Field(default=None, max_length=300)  # type: ignore[assignment]
    mapping: dict[str, Any] | None = None  # type: ignore[assignment]
    active: bool | None = None

    @field_validator("name", "kind", "trust_rank", "description", "mapping", "active",
                     mode="before")
    @classmethod
    def _not_null(cls, value: Any) -> Any:
        if value is None:
            raise ValueError("may not be null")
        return value


class SourceOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: int
    version: int
    name: str
    kind: str
    trust_rank: int
    description: str
    mapping: dict[str, Any]
    default_country: str | None
    active: bool
    write_key_prefix: str | None = Field(description="The first characters of the current write "
                                                     "key, to recognise it; never the key")
    has_webhook_secret: bool
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, source: Any) -> SourceOut:
        return cls(
            id=source.id, version=source.version, name=source.name, kind=source.kind,
            trust_rank=source.trust_rank, description=source.description,
            mapping=source.mapping or {}, default_country=source.default_country,
            active=source.active, write_key_prefix=source.write_key_prefix,
            has_webhook_secret=bool(source.webhook_secret), created_at=source.created_at,
            updated_at=source.updated_at,
        )


class WriteKeyOut(BaseModel):
    source_id: int
    write_key: str = Field(description="Shown once: only its SHA-256 is stored")
    write_key_prefix: str


class WebhookSecretOut(BaseModel):
    source_id: int
    webhook_secret: str = Field(description="Shown once; sign deliveries with it "
                                            "(see docs/integration.md)")


def valid_name(name: str) -> bool:
    return bool(_NAME.match(name))

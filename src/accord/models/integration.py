"""Sources, raw source records, standardised source profiles, identity resolution and lineage.

The chain is: a `Source` (a silo: billing, web shop, a tracking SDK) sends records; each one is
kept verbatim and append-only as a `SourceRecord` before anything else happens; the latest
version of each external entity is standardised into a `SourceProfile`, which identity resolution
links to a golden `Customer`. Golden values carry their lineage (`GoldenLineage`), every link
decision its evidence, and every merge or unmerge an `IdentityChange` snapshot that undoes it.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import Date, Float, ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from accord.core.clock import utcnow
from accord.models.base import Base, BigId, IdMixin, JSONType, TimestampMixin, VersionedMixin

SOURCE_KINDS = ("crm", "billing", "webshop", "support", "marketing", "tracking", "file", "manual")
RECORD_KINDS = ("profile", "order", "interaction", "event")
RECORD_STATUSES = ("applied", "pending", "rejected")
IMPORT_STATUSES = ("running", "completed", "failed")
LINK_METHODS = ("new", "auto", "review", "manual", "rule")
REVIEW_STATUSES = ("pending", "accepted", "rejected")
# The source every golden profile entered by hand (UI, API, demo) belongs to.
MANUAL_SOURCE = "accord"


class Source(IdMixin, TimestampMixin, VersionedMixin, Base):
    """A silo that sends customer data. `trust_rank` 1 is the most trusted."""

    __tablename__ = "sources"

    name: Mapped[str] = mapped_column(String(80), unique=True)
    kind: Mapped[str] = mapped_column(String(20))
    trust_rank: Mapped[int] = mapped_column(default=50)
    description: Mapped[str] = mapped_column(String(300), default="")
    # source column -> canonical field ("first_name", "cf.<key>", "order.total", ...) and options
    mapping: Mapped[dict[str, Any]] = mapped_column(default=dict)
    default_country: Mapped[str | None] = mapped_column(String(2))
    # Segment-style write key: only its SHA-256 is kept, the prefix identifies it in lists
    write_key_hash: Mapped[str | None] = mapped_column(String(64), unique=True)
    write_key_prefix: Mapped[str | None] = mapped_column(String(12))
    # HMAC-SHA256 key for signed webhooks; verifying needs the key itself
    webhook_secret: Mapped[str | None] = mapped_column(String(128))
    active: Mapped[bool] = mapped_column(default=True)


class ImportRun(IdMixin, TimestampMixin, Base):
    """One file import; `checkpoint_line` is the last line committed, where a resume starts."""

    __tablename__ = "import_runs"
    __table_args__ = (Index("ix_import_runs_source_file", "source_id", "file_sha256"),)

    source_id: Mapped[int] = mapped_column(ForeignKey("sources.id", ondelete="CASCADE"))
    file_name: Mapped[str] = mapped_column(String(255))
    file_sha256: Mapped[str] = mapped_column(String(64))
    file_format: Mapped[str] = mapped_column(String(16))
    mapping: Mapped[dict[str, Any]] = mapped_column(default=dict)
    status: Mapped[str] = mapped_column(String(16), default="running")
    checkpoint_line: Mapped[int] = mapped_column(default=0)
    total: Mapped[int] = mapped_column(default=0)
    accepted: Mapped[int] = mapped_column(default=0)
    updated: Mapped[int] = mapped_column(default=0)
    unchanged: Mapped[int] = mapped_column(default=0)
    rejected: Mapped[int] = mapped_column(default=0)
    flagged: Mapped[int] = mapped_column(default=0)  # rows taken with values left out (flags)
    error: Mapped[str | None] = mapped_column(Text)
    finished_at: Mapped[datetime | None] = mapped_column()
    created_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))


class ImportRejection(IdMixin, Base):
    """A row that did not land, with where and why, so the report can be downloaded."""

    __tablename__ = "import_rejections"
    __table_args__ = (UniqueConstraint("import_id", "line_no"),)

    import_id: Mapped[int] = mapped_column(ForeignKey("import_runs.id", ondelete="CASCADE"))
    line_no: Mapped[int] = mapped_column()
    field: Mapped[str | None] = mapped_column(String(120))
    reason: Mapped[str] = mapped_column(String(500))
    raw_row: Mapped[str] = mapped_column(Text, default="")


class ImportFlag(IdMixin, Base):
    """A value of a row that landed but was left out of its profile (flagged), with the reason
    and the value as written, so the report says which values were not taken."""

    __tablename__ = "import_flags"
    __table_args__ = (UniqueConstraint("import_id", "line_no", "field"),)

    import_id: Mapped[int] = mapped_column(ForeignKey("import_runs.id", ondelete="CASCADE"))
    line_no: Mapped[int] = mapped_column()
    field: Mapped[str] = mapped_column(String(120))
    reason: Mapped[str] = mapped_column(String(500))
    value: Mapped[str] = mapped_column(Text, default="")


class SourceRecord(Base):
    """A record exactly as it arrived, accepted or not. Never updated: a changed record is a
    new row.

    `(source_id, kind, external_id, content_hash)` is unique, so replaying the same record
    changes nothing. `subject_key` ties events to the person they are about (a user id or an
    anonymous id); `status` is `pending` while that person is not known yet.
    """

    __tablename__ = "source_records"
    __table_args__ = (
        UniqueConstraint("source_id", "kind", "external_id", "content_hash"),
        Index("ix_source_records_subject", "source_id", "subject_key", "status"),
        Index("ix_source_records_import", "import_id", "line_no"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    source_id: Mapped[int] = mapped_column(ForeignKey("sources.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(16))
    external_id: Mapped[str] = mapped_column(String(200))
    content_hash: Mapped[str] = mapped_column(String(64))
    payload: Mapped[dict[str, Any]] = mapped_column()
    # canonical fields mapped from the payload at arrival, for records applied later (pending)
    fields: Mapped[dict[str, Any] | None] = mapped_column(JSONType)
    received_at: Mapped[datetime] = mapped_column(default=utcnow)
    import_id: Mapped[int | None] = mapped_column(
        ForeignKey("import_runs.id", ondelete="SET NULL")
    )
    line_no: Mapped[int | None] = mapped_column()
    subject_key: Mapped[str | None] = mapped_column(String(220))
    status: Mapped[str] = mapped_column(String(16), default="applied")
    # why a `rejected` record was refused (its content hash is marked "r:", see ingest)
    reason: Mapped[str | None] = mapped_column(String(500))


class SourceProfile(IdMixin, VersionedMixin, Base):
    """The current standardised identity of one external entity in one source.

    The identity columns are what the matcher compares; `flags` holds the reason for every raw
    value that failed standardisation (the raw value stays in the source record).
    `customer_id` is the golden profile it resolved to, with the method, probability and evidence.
    """

    __tablename__ = "source_profiles"
    __table_args__ = (
        UniqueConstraint("source_id", "external_id"),
        Index("ix_source_profiles_email", "email"),
        Index("ix_source_profiles_phone", "phone"),
        Index("ix_source_profiles_last_dob", "last_name_key", "date_of_birth"),
        Index("ix_source_profiles_postcode", "postcode", "last_name_key"),
        Index("ix_source_profiles_national_id", "national_id"),
    )

    source_id: Mapped[int] = mapped_column(ForeignKey("sources.id", ondelete="CASCADE"))
    external_id: Mapped[str] = mapped_column(String(200))
    record_id: Mapped[int] = mapped_column(
        ForeignKey("source_records.id", ondelete="CASCADE"), index=True
    )
    title: Mapped[str | None] = mapped_column(String(40))
    first_name: Mapped[str | None] = mapped_column(String(100))
    last_name: Mapped[str | None] = mapped_column(String(100))
    # folded last name: the blocking key the incremental matcher looks candidates up by
    last_name_key: Mapped[str | None] = mapped_column(String(100))
    gender: Mapped[str | None] = mapped_column(String(20))
    date_of_birth: Mapped[date | None] = mapped_column(Date)
    email: Mapped[str | None] = mapped_column(String(254))
    phone: Mapped[str | None] = mapped_column(String(20))
    address_line1: Mapped[str | None] = mapped_column(String(200))
    address_line2: Mapped[str | None] = mapped_column(String(200))
    city: Mapped[str | None] = mapped_column(String(120))
    region: Mapped[str | None] = mapped_column(String(120))
    postcode: Mapped[str | None] = mapped_column(String(20))
    country: Mapped[str | None] = mapped_column(String(2))
    national_id: Mapped[str | None] = mapped_column(String(64))
    company: Mapped[str | None] = mapped_column(String(200))
    job_title: Mapped[str | None] = mapped_column(String(120))
    language: Mapped[str | None] = mapped_column(String(20))
    extra: Mapped[dict[str, Any]] = mapped_column(default=dict)  # custom fields and unmapped
    flags: Mapped[dict[str, Any]] = mapped_column(default=dict)
    # fingerprint of the mapping and settings (country, date order) the values were standardised
    # with: the same raw record under other settings is standardised again (a file re-imported
    # with a fixed mapping), under the same ones it is a replay
    standardised_with: Mapped[str | None] = mapped_column(String(64))
    observed_at: Mapped[datetime] = mapped_column(default=utcnow)
    customer_id: Mapped[int | None] = mapped_column(
        ForeignKey("customers.id", ondelete="SET NULL"), index=True
    )
    link_method: Mapped[str | None] = mapped_column(String(16))
    match_probability: Mapped[float | None] = mapped_column(Float)
    # why it was linked: the best-scoring pair into its cluster, field by field
    link_evidence: Mapped[dict[str, Any]] = mapped_column(default=dict)
    linked_at: Mapped[datetime | None] = mapped_column()


class MatchModel(IdMixin, Base):
    """A trained, versioned match model (Splink settings with estimated parameters)."""

    __tablename__ = "match_models"

    version: Mapped[int] = mapped_column(unique=True)
    engine: Mapped[str] = mapped_column(String(16))
    model: Mapped[dict[str, Any]] = mapped_column()
    upper_threshold: Mapped[float] = mapped_column(Float)
    lower_threshold: Mapped[float] = mapped_column(Float)
    trained_on: Mapped[int] = mapped_column(default=0)
    active: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    created_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))


class MatchReview(IdMixin, VersionedMixin, Base):
    """A possible match between the two thresholds, waiting for a data steward."""

    __tablename__ = "match_reviews"
    __table_args__ = (
        UniqueConstraint("left_id", "right_id"),
        Index("ix_match_reviews_status", "status", "match_probability"),
    )

    left_id: Mapped[int] = mapped_column(ForeignKey("source_profiles.id", ondelete="CASCADE"))
    right_id: Mapped[int] = mapped_column(
        ForeignKey("source_profiles.id", ondelete="CASCADE"), index=True
    )
    match_probability: Mapped[float] = mapped_column(Float)
    match_weight: Mapped[float] = mapped_column(Float)
    fields: Mapped[list[Any]] = mapped_column(default=list)  # per-field values and weights
    model_version: Mapped[int | None] = mapped_column()
    status: Mapped[str] = mapped_column(String(16), default="pending")
    decided_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    decided_at: Mapped[datetime | None] = mapped_column()
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class GoldenLineage(IdMixin, Base):
    """Which golden values a source profile supplied, and by which survivorship rule.

    One row per (customer, source profile): `fields` maps each golden field that profile's
    values won (or tied for) to the rule that chose it, e.g. {"first_name": "most_trusted"}.
    """

    __tablename__ = "golden_lineage"
    __table_args__ = (
        UniqueConstraint("customer_id", "source_profile_id"),
        Index("ix_golden_lineage_profile", "source_profile_id"),
    )

    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id", ondelete="CASCADE"))
    source_profile_id: Mapped[int] = mapped_column(
        ForeignKey("source_profiles.id", ondelete="CASCADE")
    )
    source_record_id: Mapped[int] = mapped_column(BigId)
    fields: Mapped[dict[str, Any]] = mapped_column(default=dict)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class IdentityChange(IdMixin, Base):
    """A merge, unmerge or relink, with the snapshot that undoes it exactly."""

    __tablename__ = "identity_changes"

    kind: Mapped[str] = mapped_column(String(16))  # merge | unmerge | link | unlink
    customer_id: Mapped[int | None] = mapped_column(BigId, index=True)
    other_customer_id: Mapped[int | None] = mapped_column(BigId, index=True)
    snapshot: Mapped[dict[str, Any]] = mapped_column(default=dict)
    reason: Mapped[str] = mapped_column(String(300), default="")
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    reverted_by: Mapped[int | None] = mapped_column(
        ForeignKey("identity_changes.id", ondelete="SET NULL")
    )


class IdentityAlias(IdMixin, TimestampMixin, Base):
    """An anonymous or previous id of a tracked person, pointing at their user id in the source."""

    __tablename__ = "identity_aliases"
    __table_args__ = (UniqueConstraint("source_id", "alias"),)

    source_id: Mapped[int] = mapped_column(ForeignKey("sources.id", ondelete="CASCADE"))
    alias: Mapped[str] = mapped_column(String(220))
    user_id: Mapped[str] = mapped_column(String(200))

"""Registering sources: the silos that send Accord customer data, with their trust and keys.

Write keys (the Segment-style credential of a tracking source) and webhook secrets are shown
once when they are minted. Only the SHA-256 of a write key is stored; a webhook secret must be
kept because verifying an HMAC needs the key itself.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from accord.access import audit
from accord.access.policy import Principal
from accord.core.errors import Conflict, NotFound, ValidationProblem
from accord.models import Source
from accord.models.integration import MANUAL_SOURCE

WRITE_KEY_PREFIX = "wk_"


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def get_source(session: Session, source_id: int) -> Source:
    source = session.get(Source, source_id)
    if source is None:
        raise NotFound("no such source")
    return source


def source_by_name(session: Session, name: str) -> Source:
    source = session.scalar(select(Source).where(Source.name == name))
    if source is None:
        raise NotFound(f"no source named {name!r}", field="source")
    return source


def create_source(
    session: Session,
    principal: Principal,
    *,
    name: str,
    kind: str,
    trust_rank: int = 50,
    description: str = "",
    mapping: dict[str, Any] | None = None,
    default_country: str | None = None,
) -> Source:
    from accord.integration.schemas import valid_name

    if not valid_name(name):  # whoever creates it: the API, the CLI's import, the demo
        raise ValidationProblem(
            f"{name!r} cannot name a new source: use at most 80 lower-case letters, digits, - "
            "and _, starting with a letter or digit (it appears in /hooks/{name})", field="name")
    if session.scalar(select(Source.id).where(Source.name == name)) is not None:
        raise Conflict(f"a source named {name!r} already exists", field="name")
    source = Source(name=name, kind=kind, trust_rank=trust_rank, description=description,
                    mapping=mapping or {}, default_country=default_country)
    session.add(source)
    session.flush()
    audit.record(session, principal, "create", "sources", source.id,
                 ("name", "kind", "trust_rank", "mapping"))
    return source


def manual_source(session: Session) -> Source:
    """The source of profiles entered by hand (UI, API, demo): the most trusted by default."""
    source = session.scalar(select(Source).where(Source.name == MANUAL_SOURCE))
    if source is None:
        source = Source(name=MANUAL_SOURCE, kind="manual", trust_rank=1,
                        description="profiles entered and edited in Accord itself")
        session.add(source)
        session.flush()
    return source


def mint_write_key(session: Session, principal: Principal, source: Source) -> str:
    """A new write key for the collection API; the previous one stops working."""
    key = WRITE_KEY_PREFIX + secrets.token_urlsafe(24)
    source.write_key_hash = hash_key(key)
    source.write_key_prefix = key[:10]
    session.flush()
    audit.record(session, principal, "rotate_key", "sources", source.id, ("write_key",))
    return key


def mint_webhook_secret(session: Session, principal: Principal, source: Source) -> str:
    secret = "whsec_" + secrets.token_urlsafe(32)
    source.webhook_secret = secret
    session.flush()
    audit.record(session, principal, "rotate_key", "sources", source.id, ("webhook_secret",))
    return secret


def source_for_write_key(session: Session, key: str) -> Source | None:
    if not key.startswith(WRITE_KEY_PREFIX):
        return None
    source = session.scalar(select(Source).where(Source.write_key_hash == hash_key(key)))
    if source is None or not source.active:
        return None
    # the lookup was by hash; compare again in constant time for good measure
    if not hmac.compare_digest(source.write_key_hash or "", hash_key(key)):
        return None
    return source

"""Administering sources over the API and the admin page: policy checks on top of `sources`.

Sources are configuration, not customer data: they have no owner, so the role's grant on
`sources` decides alone (admins manage them; stewards and analysts read them). The source of
hand-entered profiles (`accord`) keeps its name, kind and keys: everything else relies on them.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from accord.access import audit
from accord.access.policy import Principal
from accord.access.service import require
from accord.core.errors import Conflict, NotFound
from accord.integration import sources
from accord.integration.mapping import parse_mapping
from accord.integration.schemas import SourceCreate, SourceUpdate
from accord.models import Source
from accord.models.integration import MANUAL_SOURCE

RESOURCE = "sources"


def list_sources(session: Session, principal: Principal) -> list[Source]:
    require(principal, RESOURCE, "read")
    return list(session.scalars(select(Source).order_by(Source.trust_rank, Source.name)))


def get_source(session: Session, principal: Principal, source_id: int,
               action: str = "read") -> Source:
    require(principal, RESOURCE, "read")
    source = session.get(Source, source_id)
    if source is None:
        raise NotFound(f"source {source_id} does not exist")
    if action != "read":
        require(principal, RESOURCE, action)
    return source


def create_source(session: Session, principal: Principal, data: SourceCreate) -> Source:
    require(principal, RESOURCE, "create")
    if data.kind == "manual":
        raise Conflict("there is one manual source, Accord itself", field="kind")
    if data.mapping:
        parse_mapping(data.mapping)  # the import's own rules: 422 naming the column at fault
    return sources.create_source(
        session, principal, name=data.name, kind=data.kind, trust_rank=data.trust_rank,
        description=data.description, mapping=data.mapping,
        default_country=data.default_country,
    )


def update_source(session: Session, principal: Principal, source: Source,
                  data: SourceUpdate) -> Source:
    require(principal, RESOURCE, "update")
    changes = data.model_dump(exclude_unset=True)
    if source.name == MANUAL_SOURCE:
        fixed = sorted(k for k in ("name", "kind", "active") if k in changes
                       and changes[k] != getattr(source, k))
        if fixed:
            raise Conflict(f"the source of hand-entered profiles keeps its {fixed[0]}",
                           field=fixed[0])
    elif changes.get("kind") == "manual":
        raise Conflict("there is one manual source, Accord itself", field="kind")
    if changes.get("mapping"):
        parse_mapping(changes["mapping"])
    if "name" in changes and changes["name"] != source.name and session.scalar(
            select(Source.id).where(Source.name == changes["name"])) is not None:
        raise Conflict(f"a source named {changes['name']!r} already exists", field="name")
    changed = [k for k, v in changes.items() if getattr(source, k) != v]
    if not changed:
        return source
    for key in changed:
        setattr(source, key, changes[key])
    session.flush()
    audit.record(session, principal, "update", RESOURCE, source.id, changed)
    return source


def _mintable(source: Source) -> None:
    if source.name == MANUAL_SOURCE:
        raise Conflict("profiles entered in Accord need no key", field="source")
    if not source.active:
        raise Conflict("the source is deactivated; reactivate it first", field="active")


def mint_write_key(session: Session, principal: Principal, source: Source) -> str:
    require(principal, RESOURCE, "update")
    _mintable(source)
    return sources.mint_write_key(session, principal, source)


def mint_webhook_secret(session: Session, principal: Principal, source: Source) -> str:
    require(principal, RESOURCE, "update")
    _mintable(source)
    return sources.mint_webhook_secret(session, principal, source)

"""`POST /hooks/{source}`: signed deliveries of profiles, orders and interactions.

The signature is verified in a read-only session before anything is parsed or the write lock is
taken, so forged or stale deliveries cost one indexed read and write nothing. An unknown or
deactivated source, a source without a secret and a bad signature all answer the same 401.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Header, Path, Request
from fastapi.responses import JSONResponse
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from accord.core.db import session_factory
from accord.integration import webhooks
from accord.models import Source

router = APIRouter(prefix="/hooks", tags=["webhooks"])


async def _body(request: Request) -> bytes:
    return await request.body()


@router.post(
    "/{source_name}",
    summary="Receive a signed delivery of records for a source",
    description="Sign with the source's webhook secret: `Accord-Signature: t=<unix seconds>,"
    "v1=<hex HMAC-SHA256(secret, \"<t>.\" + body)>`; deliveries more than 5 minutes old are "
    "refused. Body: one record or an array of records `{type, id, customer, data}` "
    "(see docs/integration.md).",
)
def receive(
    source_name: Annotated[str, Path(max_length=200)],
    raw: bytes = Depends(_body),
    signature: str | None = Header(default=None, alias=webhooks.SIGNATURE_HEADER),
) -> JSONResponse:
    with session_factory(write=False)() as session:
        found = session.execute(
            select(Source.id, Source.webhook_secret)
            .where(Source.name == source_name, Source.active.is_(True))
        ).first()
    webhooks.verify(found.webhook_secret if found else None, raw, signature)
    assert found is not None  # verify refuses a missing secret
    records = webhooks.decode(raw)
    for attempt in (1, 2):
        session = session_factory(write=True)()
        try:
            source = session.get(Source, found.id)
            if source is None or not source.active:
                raise webhooks.refuse("the signature does not match")
            result = webhooks.deliver(session, source, records)
            session.commit()
            break
        except IntegrityError:  # a concurrent replay won the race; the retry sees it
            session.rollback()
            if attempt == 2:
                raise
        finally:
            session.close()
    return JSONResponse(result.as_json())

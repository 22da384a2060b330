"""The public assistant API (no login): start a conversation, ask, say it helped, or hand off to a
person. The conversation's `public_id` is the only credential; every endpoint is rate-limited
per client address (429 with Retry-After) and bodies are small (a question is at most 1,000
characters). Errors are problem+json naming the field.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated

from fastapi import APIRouter, Path, Request, Response
from fastapi.responses import JSONResponse
from sqlalchemy.orm import Session

from accord.core import idempotency
from accord.core.db import session_factory
from accord.core.ratelimit import throttle_client
from accord.models.service import AssistantConversation
from accord.service import assistant, knowledge
from accord.service.knowledge_schemas import (
    AnswerOut,
    CitationOut,
    ConversationOut,
    ConversationStart,
    HandoffIn,
    HandoffOut,
    MessageIn,
    TurnOut,
)

router = APIRouter(prefix="/help/assistant", tags=["help centre"])
PublicId = Annotated[str, Path(min_length=1, max_length=64)]


# --- helpers shared by every public (no login) endpoint of this part: help centre API and
# pages, assistant, survey answers. They live here because `knowledge_api` includes this
# router (so this module cannot import from it). The per-client limits are
# `accord.core.ratelimit.throttle_client`.

@contextmanager
def public_session(write: bool = False) -> Iterator[Session]:
    """A unit of work for an anonymous request: the caller commits; anything left uncommitted
    (an error, a read) is rolled back and the session closed."""
    session = session_factory(write=write)()
    try:
        yield session
    finally:
        session.rollback()
        session.close()


def _citations_out(citations: list[assistant.Citation]) -> list[CitationOut]:
    return [CitationOut(article_id=c.article_id, title=c.title, url=c.url, quote=c.quote)
            for c in citations]


def conversation_out(session: Session, conversation: AssistantConversation) -> ConversationOut:
    """The conversation as its holder sees it: turns and the still-public articles they cite
    (read in one query for all turns). Never the name or e-mail given at hand-off."""
    ticket = f"T-{conversation.ticket_id}" if conversation.ticket_id else None
    found = assistant.turns(session, conversation)
    cited = assistant.citations_by_turn(session, found)
    turns = [TurnOut(role=t.role, text=t.text, answered=t.answered, created_at=t.created_at,
                     citations=_citations_out(cited.get(t.id, [])))
             for t in found]
    return ConversationOut(public_id=conversation.public_id, locale=conversation.locale,
                           status=conversation.status, ticket_reference=ticket, turns=turns)


@router.post("/conversations", status_code=201, response_model=ConversationOut,
             summary="Start an assistant conversation (no login)")
def start(request: Request, body: ConversationStart | None = None) -> ConversationOut:
    throttle_client(assistant.STARTS_PER_CLIENT, request)
    with public_session(write=True) as session:
        conversation = assistant.start(session, locale=(body or ConversationStart()).locale)
        out = conversation_out(session, conversation)
        session.commit()
        return out


@router.get("/conversations/{public_id}", response_model=ConversationOut,
            summary="A conversation's turns (no login)")
def read(public_id: PublicId, request: Request) -> ConversationOut:
    throttle_client(knowledge.PUBLIC_READS_PER_CLIENT, request)
    with public_session() as session:
        return conversation_out(session, assistant.get(session, public_id))


@router.post("/conversations/{public_id}/messages", response_model=AnswerOut,
             summary="Ask a question (no login)",
             description="Answers from published public articles only, quoting them, or says "
             "it does not know (`answered: false`). At most 20 questions per conversation. "
             "A retry may send an `Idempotency-Key` (per conversation): the same key and "
             "question give the saved answer and ask nothing twice; another question with "
             "that key is a 422.")
def ask(public_id: PublicId, body: MessageIn, request: Request) -> Response:
    throttle_client(assistant.QUESTIONS_PER_CLIENT, request)
    key, path = request.headers.get("Idempotency-Key"), request.url.path
    owner = "assistant:" + hashlib.sha256(public_id.encode()).hexdigest()
    body_hash = idempotency.request_hash("POST", path, body.model_dump(mode="json"))
    with public_session(write=True) as session:
        conversation = assistant.get(session, public_id)
        if key is not None:
            saved = idempotency.lookup(session, owner, key, "POST", path, body_hash)
            if saved is not None:
                return JSONResponse(saved.body, headers={"Idempotent-Replayed": "true"})
        result = assistant.ask(session, conversation, body.text)
        out = AnswerOut(answered=result.answered, text=result.text, status=conversation.status,
                        citations=_citations_out(result.citations)).model_dump(mode="json")
        if key is not None:
            idempotency.store(session, owner, key, "POST", path, body_hash, 200, out, {})
        session.commit()
        return JSONResponse(out)


@router.post("/conversations/{public_id}/resolved", response_model=ConversationOut,
             summary="\"That answered my question\" (no login)")
def resolved(public_id: PublicId, request: Request) -> ConversationOut:
    throttle_client(assistant.QUESTIONS_PER_CLIENT, request)
    with public_session(write=True) as session:
        conversation = assistant.get(session, public_id)
        assistant.mark_resolved(session, conversation)
        out = conversation_out(session, conversation)
        session.commit()
        return out


@router.post("/conversations/{public_id}/handoff", response_model=HandoffOut,
             summary="Pass the conversation to a person (no login)",
             description="Creates a ticket (channel `assistant`) whose first message is the "
             "whole transcript; replies go to `email`. Repeating it returns the same ticket.")
def handoff(public_id: PublicId, body: HandoffIn, request: Request) -> HandoffOut:
    throttle_client(assistant.HANDOFFS_PER_CLIENT, request)
    with public_session(write=True) as session:
        conversation = assistant.get(session, public_id)
        ticket = assistant.hand_off(session, conversation, name=body.name, email=body.email)
        out = HandoffOut(status=conversation.status, ticket_reference=f"T-{ticket.id}")
        session.commit()
        return out

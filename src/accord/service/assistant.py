"""The self-service assistant: answers customer questions by quoting public articles, says so
when it does not know, and hands the conversation to a person as a ticket.

Retrieval: `knowledge.search(..., public_only=True, match="any")` in the conversation's locale,
so only published *public* articles can ever be read, quoted or linked; internal articles never
reach this module, however well they match.

Answering is extractive and offline (no model, no network): the top `CANDIDATES` articles are cut
into passages (paragraphs; long paragraphs into sentences) and each passage is scored by
**term coverage**: the share of the question's content words (English stop words removed and a
light suffix stemmer applied when the locale is English; every word otherwise) found in the
passage or its article's title. The assistant answers only when the best passage covers at least
`MIN_COVERAGE` (60 %) of the content words *and* itself contains at least one of them; it then
quotes that passage (and, when another article also qualifies, that article's best passage),
naming each article and linking its public page. Otherwise it says it does not know and offers
a person. A question with no content words ("hello?") is never answered.

Deflection (`deflection_stats`): among conversations started in a period that asked at least
one question, those with at least one answered question and no hand-off, over all of them.
"""

from __future__ import annotations

import re
import secrets
import unicodedata
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import and_, exists, func, select
from sqlalchemy.orm import Session

from accord.access import audit
from accord.access.policy import Principal
from accord.access.service import require
from accord.core.clock import as_utc, utcnow
from accord.core.contact import InvalidValue
from accord.core.errors import Conflict, NotFound, ValidationProblem
from accord.core.events import emit
from accord.core.ratelimit import SlidingWindow
from accord.models.service import AssistantConversation, AssistantTurn, KbArticle
from accord.service import knowledge

CANDIDATES = 3
MIN_COVERAGE = 0.6
MAX_CITATIONS = 2
MAX_QUOTE = 480
MAX_QUESTIONS = 20  # per conversation; then a new conversation or a person
# Per client address (public, no login): enough for a person, few enough to stop a flood.
STARTS_PER_CLIENT = SlidingWindow(limit=20, window_seconds=600)
QUESTIONS_PER_CLIENT = SlidingWindow(limit=60, window_seconds=600)
HANDOFFS_PER_CLIENT = SlidingWindow(limit=5, window_seconds=3600)

NOT_KNOWN = ("I'm sorry, I don't know the answer to that from our help articles. If you like, "
             "I can pass your question to our support team and a person will reply by e-mail.")
INTRO = "Here is what our help centre says:"
OUTRO = ("Did that answer your question? If not, I can pass this conversation to our support "
         "team.")

_WORD = re.compile(r"\w+")
_STOP_TEXT = """
a about above after again against all am an and any are as at be because been before being
below between both but by can cannot could did do does doing done down during each few for
from further get gets getting got had has have having he her here hers herself him himself his
how i if in into is it its itself just let me more most my myself no nor not now of off on once
only or other our ours ourselves out over own please same she should so some such than that the
their theirs them themselves then there these they this those through to too under until up us
very want wanted was we were what when where which while who whom why will with would you your
yours yourself yourselves hi hello hey thanks thank help need tell know way like also still
anyone someone something anything ok okay possible able im ive dont cant doesnt isnt
"""
STOP_WORDS = frozenset(_STOP_TEXT.split())


# --- text ---------------------------------------------------------------------------------------

def _fold(word: str) -> str:
    return "".join(c for c in unicodedata.normalize("NFKD", word)
                   if not unicodedata.combining(c))


def stem(word: str) -> str:
    """A light English suffix stripper, applied alike to questions and articles (so 'refunds',
    'refunded', 'refunding' and 'refund' meet); crude by design, never shown to anyone."""
    w = word
    if len(w) > 4 and w.endswith("ies"):
        return w[:-3] + "y"
    for suffix in ("ing", "ed"):
        if len(w) > len(suffix) + 2 and w.endswith(suffix):
            w = w[: -len(suffix)]
            if len(w) > 3 and w[-1] == w[-2] and w[-1] not in "lsz":
                w = w[:-1]  # shipped → ship, resetting → reset
            break
    else:
        if len(w) > 3 and w.endswith("es") and w[-3] in "sxz":
            w = w[:-2]
        elif len(w) > 3 and w.endswith("s") and not w.endswith(("ss", "us", "is")):
            w = w[:-1]
    if len(w) > 4 and w.endswith("e"):
        w = w[:-1]  # change, changed, changing → chang
    return w


def content_terms(text: str, lang: str) -> list[str]:
    """The words that carry a question's meaning, in order, distinct."""
    out: dict[str, None] = {}
    english = lang == "en"
    for raw in _WORD.findall(text.casefold()):
        word = _fold(raw).strip("_").replace("'", "")
        if len(word) < 2 or (english and word in STOP_WORDS):
            continue
        out[stem(word) if english else word] = None
    return list(out)


def passages(body: str) -> list[str]:
    """Paragraphs (blank-line separated); a long paragraph is cut into its sentences."""
    out: list[str] = []
    for para in re.split(r"\n\s*\n", body):
        para = " ".join(para.split())
        if not para:
            continue
        if len(para) <= MAX_QUOTE:
            out.append(para)
        else:
            out.extend(s for s in re.split(r"(?<=[.!?])\s+", para) if s)
    return out


def _quote(text: str) -> str:
    return text if len(text) <= MAX_QUOTE else text[: MAX_QUOTE - 1].rstrip() + "…"


# --- answering ---------------------------------------------------------------------------------

@dataclass(frozen=True)
class Citation:
    article_id: int
    title: str
    url: str
    quote: str


@dataclass(frozen=True)
class Answer:
    answered: bool
    text: str
    citations: list[Citation] = field(default_factory=list)
    coverage: float = 0.0  # of the best passage, for tests and tuning


@dataclass(frozen=True)
class _Scored:
    coverage: float
    body_hits: int
    order: int
    passage: str
    article: KbArticle


def answer(session: Session, question: str, locale: str = "en") -> Answer:
    """The extractive answer to one question from public articles (nothing is stored)."""
    lang = knowledge.language_of(locale)
    terms = content_terms(question, lang)
    if not terms:
        return Answer(False, NOT_KNOWN)
    words = [w for w in _WORD.findall(question.casefold())
             if lang != "en" or _fold(w) not in STOP_WORDS]
    hits = knowledge.search(session, " ".join(dict.fromkeys(words + terms)), locale=locale,
                            public_only=True, limit=CANDIDATES, match="any")
    if not hits:
        return Answer(False, NOT_KNOWN)
    articles = {a.id: a for a in session.scalars(
        select(KbArticle).where(KbArticle.id.in_([h.id for h in hits]),
                                KbArticle.status == "published",
                                KbArticle.visibility == "public"))}
    wanted = set(terms)
    best_per_article: list[_Scored] = []
    for order, hit in enumerate(hits):
        article = articles.get(hit.id)
        if article is None:
            continue
        title_terms = set(content_terms(article.title, lang))
        best: _Scored | None = None
        for passage in passages(article.body):
            body_terms = set(content_terms(passage, lang))
            covered = wanted & (body_terms | title_terms)
            scored = _Scored(len(covered) / len(wanted), len(wanted & body_terms), order,
                             passage, article)
            if best is None or (scored.coverage, scored.body_hits, -len(passage)) > (
                    best.coverage, best.body_hits, -len(best.passage)):
                best = scored
        if best is not None:
            best_per_article.append(best)
    best_per_article.sort(key=lambda s: (-s.coverage, -s.body_hits, s.order))
    chosen = [s for s in best_per_article
              if s.coverage >= MIN_COVERAGE and s.body_hits >= 1][:MAX_CITATIONS]
    top = best_per_article[0].coverage if best_per_article else 0.0
    if not chosen:
        return Answer(False, NOT_KNOWN, coverage=top)
    citations = [Citation(s.article.id, s.article.title,
                          knowledge.public_url(s.article.locale, s.article.slug),
                          _quote(s.passage)) for s in chosen]
    lines = [INTRO, ""]
    for c in citations:
        lines += [f"“{c.quote}”", f"— {c.title} ({c.url})", ""]
    lines.append(OUTRO)
    return Answer(True, "\n".join(lines), citations, top)


# --- conversations -----------------------------------------------------------------------------

def start(session: Session, *, locale: str = "en") -> AssistantConversation:
    """A new conversation; its `public_id` is the only handle the customer's browser holds."""
    conversation = AssistantConversation(public_id=secrets.token_urlsafe(24),
                                         locale=knowledge.normalise_locale(locale),
                                         status="open")
    session.add(conversation)
    session.flush()
    return conversation


def get(session: Session, public_id: str) -> AssistantConversation:
    conversation = None
    if 0 < len(public_id) <= 64:
        conversation = session.scalar(select(AssistantConversation)
                                      .where(AssistantConversation.public_id == public_id))
    if conversation is None:
        raise NotFound("there is no such conversation")
    return conversation


def turns(session: Session, conversation: AssistantConversation) -> list[AssistantTurn]:
    return list(session.scalars(select(AssistantTurn)
                                .where(AssistantTurn.conversation_id == conversation.id)
                                .order_by(AssistantTurn.id)))


def citations_by_turn(session: Session, found: list[AssistantTurn]
                      ) -> dict[int, list[Citation]]:
    """The articles each assistant turn used, as they are now (only those still published and
    public, so an article made internal later is no longer linked), keyed by turn id. One query
    for the whole conversation, not one per turn."""
    wanted = {int(i) for t in found for i in (t.article_ids or [])}
    if not wanted:
        return {}
    by_id = {a.id: a for a in session.scalars(select(KbArticle).where(
        KbArticle.id.in_(wanted), KbArticle.status == "published",
        KbArticle.visibility == "public"))}
    return {t.id: [Citation(a.id, a.title, knowledge.public_url(a.locale, a.slug), "")
                   for i in t.article_ids if (a := by_id.get(int(i))) is not None]
            for t in found if t.article_ids}


def citations_of(session: Session, turn: AssistantTurn) -> list[Citation]:
    """The articles one assistant turn used (see `citations_by_turn`)."""
    return citations_by_turn(session, [turn]).get(turn.id, [])


def _open(conversation: AssistantConversation) -> None:
    if conversation.status == "handed_off":
        raise Conflict("this conversation was passed to our support team; they will reply by "
                       "e-mail", field="status")
    if conversation.status == "closed":
        raise Conflict("this conversation is closed; start a new one", field="status")


def ask(session: Session, conversation: AssistantConversation, question: str,
        at: datetime | None = None) -> Answer:
    """Store the customer's question and the assistant's answer (with the articles used)."""
    _open(conversation)
    question = " ".join(question.split())
    if not question:
        raise ValidationProblem("the question is empty", field="text")
    if "\x00" in question:
        raise ValidationProblem("text may not contain NUL characters", field="text")
    asked = session.scalar(select(func.count()).where(
        AssistantTurn.conversation_id == conversation.id, AssistantTurn.role == "customer"))
    if (asked or 0) >= MAX_QUESTIONS:
        raise Conflict(f"a conversation holds at most {MAX_QUESTIONS} questions; ask our team "
                       "or start a new conversation", field="text")
    now = at or utcnow()
    result = answer(session, question, conversation.locale)
    session.add(AssistantTurn(conversation_id=conversation.id, role="customer", text=question,
                              article_ids=[], answered=None, created_at=now))
    session.add(AssistantTurn(conversation_id=conversation.id, role="assistant",
                              text=result.text, article_ids=[c.article_id for c in
                                                             result.citations],
                              answered=result.answered, created_at=now))
    if result.answered:
        conversation.status = "answered"
    conversation.updated_at = now
    session.flush()
    return result


def mark_resolved(session: Session, conversation: AssistantConversation) -> None:
    """"That answered my question": the conversation closes."""
    _open(conversation)
    conversation.status = "closed"
    session.flush()


def transcript(session: Session, conversation: AssistantConversation) -> str:
    lines = [f"Conversation with the help-centre assistant, started "
             f"{as_utc(conversation.created_at):%Y-%m-%d %H:%M} UTC (locale "
             f"{conversation.locale}).", ""]
    for turn in turns(session, conversation):
        who = "Customer" if turn.role == "customer" else "Assistant"
        lines.append(f"[{as_utc(turn.created_at):%Y-%m-%d %H:%M} UTC] {who}:")
        lines.append(turn.text)
        lines.append("")
    return "\n".join(lines).rstrip() + "\n"


def hand_off(session: Session, conversation: AssistantConversation, *, name: str,
             email: str) -> Any:
    """A ticket (channel `assistant`) whose first message is the whole transcript, written by
    the system principal; the conversation is then handed off. Asking twice returns the same
    ticket."""
    from accord.integration.standardise import standardise_email
    from accord.models.service import Ticket
    from accord.service import tickets

    if conversation.status == "handed_off" and conversation.ticket_id is not None:
        ticket = session.get(Ticket, conversation.ticket_id)
        if ticket is not None:
            return ticket
    name = " ".join(name.split())[:200]
    if not name:
        raise ValidationProblem("please tell us your name", field="name")
    try:
        email_norm = standardise_email(email)
    except InvalidValue as exc:
        raise ValidationProblem(f"invalid e-mail address: {exc}", field="email") from None
    first = session.scalar(select(AssistantTurn.text).where(
        AssistantTurn.conversation_id == conversation.id, AssistantTurn.role == "customer")
        .order_by(AssistantTurn.id).limit(1))
    if first is None:
        raise ValidationProblem("ask a question first", field="text")
    now = utcnow()
    principal = tickets.system_principal("assistant")
    ticket = tickets.create_ticket(
        session, principal, subject=first[:300], channel="assistant",
        body_text=transcript(session, conversation), requester_email=email_norm,
        requester_name=name, language=knowledge.language_of(conversation.locale)[:8])
    conversation.status = "handed_off"
    conversation.ticket_id = ticket.id
    conversation.handed_off_at = now
    conversation.name, conversation.email = name, email_norm
    conversation.customer_id = ticket.customer_id
    session.flush()
    audit.record(session, principal, "update", "assistant_conversations", conversation.id,
                 ["status", "ticket_id", "name", "email"], {"ticket_id": ticket.id})
    emit(session, "assistant.handed_off", "assistant_conversation", conversation.id,
         {"ticket_id": ticket.id}, None)
    return ticket


# --- deflection --------------------------------------------------------------------------------

@dataclass(frozen=True)
class DeflectionStats:
    start: datetime
    end: datetime
    conversations: int  # started in [start, end)
    with_question: int
    answered: int  # with a question and at least one answered question
    handed_off: int  # with a question and handed to a person
    resolved: int  # the customer said the answer solved it
    deflected: int  # answered and not handed off

    @property
    def rate(self) -> float | None:
        return None if not self.with_question else round(self.deflected / self.with_question, 4)


def deflection_stats(session: Session, start: datetime, end: datetime) -> DeflectionStats:
    """One aggregate query over the period's conversations (index on created_at)."""
    start, end = as_utc(start), as_utc(end)
    if end <= start:
        raise ValidationProblem("the period's end must be after its start", field="end")
    c = AssistantConversation
    has_q = exists().where(AssistantTurn.conversation_id == c.id,
                           AssistantTurn.role == "customer")
    got_answer = exists().where(AssistantTurn.conversation_id == c.id,
                                AssistantTurn.role == "assistant",
                                AssistantTurn.answered.is_(True))
    handed = c.handed_off_at.is_not(None)
    row = session.execute(select(
        func.count(c.id),
        func.count(c.id).filter(has_q),
        func.count(c.id).filter(and_(has_q, got_answer)),
        func.count(c.id).filter(and_(has_q, handed)),
        func.count(c.id).filter(and_(has_q, c.status == "closed")),
        func.count(c.id).filter(and_(has_q, got_answer, ~handed)),
    ).where(c.created_at >= start, c.created_at < end)).one()
    return DeflectionStats(start, end, *(int(v or 0) for v in row))


def deflection_rate(session: Session, start: datetime, end: datetime) -> float | None:
    """Share of conversations with a question that were answered without a ticket (None when
    no conversation asked anything in the period)."""
    return deflection_stats(session, start, end).rate


def stats(session: Session, principal: Principal, start: datetime,
          end: datetime) -> DeflectionStats:
    """Staff view of the deflection figures (`knowledge` read)."""
    require(principal, knowledge.RESOURCE, "read")
    return deflection_stats(session, start, end)

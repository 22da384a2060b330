"""The assistant: quotes the right public article, says it does not know, never uses internal
articles, hands off with the transcript as a ticket, and the deflection rate."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from accord.access.policy import SYSTEM
from accord.core.errors import Conflict, ValidationProblem
from accord.models.service import AssistantTurn, Ticket, TicketMessage
from accord.service import assistant, knowledge
from accord.service.knowledge_schemas import ArticleCreate

PASSWORD = ("Reset your password",
            "Passwords protect your account.\n\n"
            "To reset your password, open Settings, choose Security and click "
            "\"Forgot password\". We e-mail you a link that works for one hour.\n\n"
            "Contact us if the e-mail does not arrive.")
REFUND = ("Refunds",
          "We refund every order returned within 30 days.\n\n"
          "The refund reaches your card within five working days after we receive the parcel.")


def add(session, title: str, body: str, *, visibility: str = "public", locale: str = "en",
        publish: bool = True) -> int:
    article = knowledge.create_article(session, SYSTEM, ArticleCreate(
        title=title, body=body, visibility=visibility, locale=locale))
    if publish:
        knowledge.publish(session, SYSTEM, article)
    session.flush()
    return article.id


def test_stemmer_meets_word_forms():
    assert {assistant.stem(w) for w in ("refund", "refunds", "refunded", "refunding")} == \
        {"refund"}
    assert assistant.stem("resetting") == assistant.stem("reset")
    assert assistant.stem("changed") == assistant.stem("change") == assistant.stem("changing")
    assert assistant.content_terms("How do I reset my password?", "en") == ["reset", "password"]
    assert assistant.content_terms("Wie setze ich das Passwort zurück?", "de")[-1] == "zuruck"


def test_answers_with_a_quote_from_the_right_article(session):
    pwd = add(session, *PASSWORD)
    add(session, *REFUND)
    result = assistant.answer(session, "How can I reset my password?")
    assert result.answered and result.coverage == 1.0
    assert [c.article_id for c in result.citations] == [pwd]
    quote = result.citations[0].quote
    assert quote.startswith("To reset your password, open Settings")
    assert quote in result.text and "Reset your password" in result.text
    assert "/help/en/reset-your-password" in result.text
    refund = assistant.answer(session, "When will my refund arrive on my card?")
    assert refund.answered and refund.citations[0].title == "Refunds"
    assert "five working days" in refund.citations[0].quote


def test_says_it_does_not_know(session):
    add(session, *PASSWORD)
    add(session, *REFUND)
    for question in ("What is the capital of France?", "hello?", "???",
                     "Can I pay my invoice with bitcoin?"):
        result = assistant.answer(session, question)
        assert not result.answered and result.citations == [], question
        assert "don't know" in result.text
    # one word of three in common is not enough (coverage 1/3 < 60 %)
    weak = assistant.answer(session, "password for the wifi router")
    assert not weak.answered and 0 < weak.coverage < assistant.MIN_COVERAGE


def test_never_uses_internal_or_draft_articles(session):
    add(session, "Reset a customer's password (agents)",
        "Agents reset a password in the admin console: Users, Reset password, confirm.",
        visibility="internal")
    add(session, "Password reset trick", "Reset password via the hidden menu.", publish=False)
    assert not assistant.answer(session, "reset password").answered
    pwd = add(session, *PASSWORD)
    result = assistant.answer(session, "How do I reset the password in the admin console?")
    assert {c.article_id for c in result.citations} <= {pwd}
    assert "admin console: Users" not in result.text and "hidden menu" not in result.text


def test_locale_of_the_conversation(session):
    add(session, *PASSWORD)
    de = add(session, "Passwort zurücksetzen",
             "Öffnen Sie Einstellungen und klicken Sie auf Passwort vergessen.", locale="de")
    result = assistant.answer(session, "Passwort vergessen", locale="de")
    assert result.answered and [c.article_id for c in result.citations] == [de]
    assert result.citations[0].url == "/help/de/passwort-zurucksetzen"


def test_conversation_turns_and_statuses(session):
    pwd = add(session, *PASSWORD)
    conv = assistant.start(session, locale="en")
    assert len(conv.public_id) >= 32 and conv.status == "open"
    assert not assistant.ask(session, conv, "Do you sell bicycles?").answered
    assert conv.status == "open"
    assert assistant.ask(session, conv, "how to reset my password").answered
    assert conv.status == "answered"
    rows = assistant.turns(session, conv)
    assert [(t.role, t.answered) for t in rows] == [
        ("customer", None), ("assistant", False), ("customer", None), ("assistant", True)]
    assert rows[3].article_ids == [pwd] and rows[1].article_ids == []
    assert assistant.get(session, conv.public_id).id == conv.id
    assistant.mark_resolved(session, conv)
    assert conv.status == "closed"
    with pytest.raises(Conflict):
        assistant.ask(session, conv, "another one")


def test_question_cap(session):
    conv = assistant.start(session)
    for n in range(assistant.MAX_QUESTIONS):
        assistant.ask(session, conv, f"question {n}")
    with pytest.raises(Conflict):
        assistant.ask(session, conv, "one too many")


def test_hand_off_creates_a_ticket_with_the_transcript(session):
    add(session, *PASSWORD)
    conv = assistant.start(session)
    assistant.ask(session, conv, "My parcel never arrived, what now?")
    assistant.ask(session, conv, "How do I reset my password?")
    with pytest.raises(ValidationProblem) as bad:
        assistant.hand_off(session, conv, name="Ada", email="not-an-address")
    assert bad.value.field == "email"
    ticket = assistant.hand_off(session, conv, name="Ada Lovelace", email="Ada@Example.com")
    session.flush()
    assert ticket.channel == "assistant" and ticket.subject == "My parcel never arrived, what now?"
    assert ticket.requester_email == "ada@example.com" and ticket.customer_id is not None
    (message,) = session.scalars(select(TicketMessage).where(
        TicketMessage.ticket_id == ticket.id)).all()
    for text in ("Customer:\nMy parcel never arrived", "Assistant:\nI'm sorry, I don't know",
                 "How do I reset my password?", "To reset your password, open Settings"):
        assert text in message.body_text, text
    assert message.direction == "inbound"
    assert (conv.status, conv.ticket_id, conv.email) == ("handed_off", ticket.id,
                                                         "ada@example.com")
    again = assistant.hand_off(session, conv, name="Ada", email="ada@example.com")
    assert again.id == ticket.id
    assert session.scalar(select(Ticket.id).where(Ticket.id != ticket.id)) is None
    with pytest.raises(Conflict):
        assistant.ask(session, conv, "still there?")


def test_hand_off_needs_a_question(session):
    conv = assistant.start(session)
    with pytest.raises(ValidationProblem):
        assistant.hand_off(session, conv, name="Ada", email="ada@example.com")


def test_deflection_rate_on_a_hand_made_set(session):
    add(session, *PASSWORD)
    day = datetime(2026, 3, 2, 12, tzinfo=UTC)

    def conversation(*questions: str, hand_off: bool = False, resolved: bool = False,
                     at: datetime = day) -> None:
        conv = assistant.start(session)
        conv.created_at = at
        for q in questions:
            assistant.ask(session, conv, q, at=at)
        if hand_off:
            assistant.hand_off(session, conv, name="Bo", email="bo@example.com")
        if resolved:
            assistant.mark_resolved(session, conv)
        session.flush()

    conversation("reset my password", resolved=True)  # deflected, resolved
    conversation("reset my password")  # deflected (answered, no ticket)
    conversation("reset my password", "where is my parcel?", hand_off=True)  # answered, ticket
    conversation("where is my parcel?", hand_off=True)  # not answered, ticket
    conversation("where is my parcel?")  # not answered, abandoned
    conversation()  # no question: not counted
    conversation("reset my password", at=day - timedelta(days=10))  # outside the period
    stats = assistant.deflection_stats(session, day - timedelta(days=1), day + timedelta(days=1))
    assert (stats.conversations, stats.with_question, stats.answered, stats.handed_off,
            stats.resolved, stats.deflected) == (6, 5, 3, 2, 1, 2)
    assert stats.rate == 0.4
    assert assistant.deflection_rate(session, day - timedelta(days=1),
                                     day + timedelta(days=1)) == 0.4
    assert assistant.deflection_rate(session, day + timedelta(days=5),
                                     day + timedelta(days=6)) is None
    assert session.scalar(select(AssistantTurn.id).limit(1)) is not None

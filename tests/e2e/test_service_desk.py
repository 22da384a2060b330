"""The service desk end to end, in a real browser and over real SMTP: a customer's e-mail
arrives at the `accord mail-in` SMTP endpoint (aiosmtpd, started here) and becomes a ticket;
the agent signs in, opens it from My queue and writes a public reply in the browser; the jobs
worker sends the reply to a local SMTP sink; the customer answers with In-Reply-To set to the
captured Message-ID; the answer threads into the same ticket in the browser, and the SLA
first-response timer shows "met"."""

from __future__ import annotations

import os
import smtplib
import socket
import time
from collections.abc import Iterator
from email import message_from_bytes, policy
from email.message import EmailMessage, Message
from typing import Any

import pytest
from playwright.sync_api import expect
from sqlalchemy import func, select

from accord.access import service as access
from accord.core import db as dbmod
from accord.core import jobs
from accord.core.settings import reset_settings
from accord.models import User
from accord.models.service import SlaPolicy, SlaTarget, Ticket, TicketMessage
from accord.service import mail_in, mail_out, tickets
from tests.e2e.test_browser import Tab

pytestmark = pytest.mark.browser

SUPPORT = "help@example.com"
CUSTOMER = "ann.archer@example.org"
SCREENSHOT = "/tmp/accord-service-desk.png"
QUEUE_SCREENSHOT = "/tmp/accord-service-queue.png"
assert mail_out.MAIL_REPLY  # importing mail_out registers the "ticket.replied" mail job


class Sink:
    """aiosmtpd handler keeping every message Accord sends."""

    def __init__(self) -> None:
        self.messages: list[Message] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
        self.messages.append(message_from_bytes(envelope.content, policy=policy.default))
        return "250 Message accepted for delivery"


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def desk(live_server: Any) -> Iterator[dict[str, Any]]:
    """Outbound mail to a sink, the mail-in endpoint listening, an SLA policy in force."""
    from aiosmtpd.controller import Controller

    url = os.environ["ACCORD_DATABASE_URL"]
    sink_port, in_port = _port(), _port()
    saved = {k: os.environ.get(k) for k in ("ACCORD_SMTP_HOST", "ACCORD_SMTP_PORT",
                                            "ACCORD_SMTP_STARTTLS", "ACCORD_SMTP_FROM",
                                            "ACCORD_MAIL_IN_ADDRESSES")}
    os.environ.update({"ACCORD_SMTP_HOST": "127.0.0.1", "ACCORD_SMTP_PORT": str(sink_port),
                       "ACCORD_SMTP_STARTTLS": "false",
                       "ACCORD_SMTP_FROM": f"Accord Support <{SUPPORT}>",
                       "ACCORD_MAIL_IN_ADDRESSES": SUPPORT})
    reset_settings()
    sink = Sink()
    outbound = Controller(sink, hostname="127.0.0.1", port=sink_port)
    inbound = mail_in.make_controller("127.0.0.1", in_port, url=url)
    outbound.start()
    inbound.start()
    with dbmod.session_scope(url) as s:
        policy = SlaPolicy(name="Standard", is_default=True)
        s.add(policy)
        s.flush()
        for priority in ("low", "normal", "high", "urgent"):
            s.add(SlaTarget(policy_id=policy.id, priority=priority, first_response_minutes=240,
                            next_response_minutes=240, resolution_minutes=2880))
    try:
        yield {"url": url, "sink": sink, "in_port": in_port}
    finally:
        inbound.stop()
        outbound.stop()
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        reset_settings()


def _send(port: int, msg: EmailMessage) -> None:
    with smtplib.SMTP("127.0.0.1", port, timeout=10) as client:
        client.send_message(msg)


def _mail(subject: str, body: str, **headers: str) -> EmailMessage:
    msg = EmailMessage()
    msg["From"] = f"Ann Archer <{CUSTOMER}>"
    msg["To"] = SUPPORT
    msg["Subject"] = subject
    msg["Message-ID"] = f"<{time.monotonic_ns()}@example.org>"
    for name, value in headers.items():
        msg[name.replace("_", "-")] = value
    msg.set_content(body)
    return msg


def _wait_for(check: Any, what: str, timeout: float = 10.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        time.sleep(0.05)
    pytest.fail(f"timed out waiting for {what}")


def _ticket_of(url: str, subject: str) -> int | None:
    with dbmod.session_scope(url) as s:
        return s.scalar(select(Ticket.id).where(Ticket.subject == subject))


@pytest.fixture
def tab(browser: Any, live_server: Any) -> Iterator[Tab]:
    t = Tab(browser, live_server.url)
    yield t
    t.close()


def test_mail_reply_thread_and_sla(tab: Tab, live_server: Any, desk: dict[str, Any]) -> None:
    url, sink = desk["url"], desk["sink"]
    subject = "My kettle arrived broken"
    _send(desk["in_port"], _mail(subject, "Hello, the kettle I ordered arrived broken."))
    ticket_id = _wait_for(lambda: _ticket_of(url, subject), "the ticket from the e-mail")
    # the agent on duty gets it (as a routing rule would): assigned by the team's manager
    with dbmod.session_scope(url) as s:
        agent = s.execute(select(User).where(User.email == live_server.seeded.emails["support"])
                          ).scalar_one()
        admin = s.execute(select(User).where(User.email == live_server.seeded.emails["admin"])
                          ).scalar_one()
        ticket = s.get(Ticket, ticket_id)
        tickets.assign(s, access.principal_for(admin), ticket, assignee_id=agent.id)

    tab.login(live_server.seeded.emails["support"])
    page = tab.page
    page.get_by_role("link", name="Service").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("My queue")
    row = page.locator(f'tr[data-ticket="{ticket_id}"]')
    expect(row.locator('[data-sla="running"]')).to_contain_text("left")
    page.screenshot(path=QUEUE_SCREENSHOT, full_page=True)
    row.get_by_role("link").click()
    expect(page.get_by_role("heading", level=1)).to_contain_text(f"T-{ticket_id}")
    expect(page.locator('li[data-metric="first_response"]')).to_have_attribute(
        "data-status", "running")
    expect(page.locator(".msg-inbound .msg-body")).to_contain_text("arrived broken")

    page.get_by_label("Public reply").check()
    page.locator("#reply-body").fill("Sorry Ann, a new kettle is on its way today.")
    page.get_by_role("button", name="Send").click()
    expect(page.get_by_role("status").filter(has_text="Reply sent.")).to_be_visible()
    expect(page.locator(".msg-outbound .msg-body")).to_contain_text("new kettle is on its way")
    expect(page.locator('li[data-metric="first_response"]')).to_have_attribute(
        "data-status", "met")

    # the worker relays "ticket.replied" and sends the reply through the SMTP sink
    def sent() -> Message | None:
        jobs.work(url, once=True)
        return next((m for m in sink.messages if m["To"] and CUSTOMER in m["To"]), None)

    reply = _wait_for(sent, "the reply e-mail")
    assert f"[T-{ticket_id}]" in reply["Subject"]
    assert "new kettle is on its way" in reply.get_body().get_content()
    message_id = reply["Message-ID"]
    assert message_id

    # the customer answers the e-mail: it threads into the same ticket
    _send(desk["in_port"], _mail("Re: kettle", "Thank you, that is great news!",
                                 In_Reply_To=message_id, References=message_id))

    def threaded() -> bool:
        with dbmod.session_scope(url) as s:
            return bool(s.scalar(select(func.count()).select_from(TicketMessage).where(
                TicketMessage.ticket_id == ticket_id, TicketMessage.direction == "inbound")) == 2)

    _wait_for(threaded, "the customer's answer on the ticket")
    page.reload()
    inbound = page.locator(".msg-inbound .msg-body")
    expect(inbound).to_have_count(2)
    expect(inbound.nth(1)).to_contain_text("that is great news")
    expect(page.locator('li[data-metric="first_response"]')).to_have_attribute(
        "data-status", "met")
    expect(page.locator('li[data-metric="first_response"] .sla-badge')).to_have_text("Met")
    with dbmod.session_scope(url) as s:
        assert s.scalar(select(func.count()).select_from(Ticket).where(
            Ticket.requester_email == CUSTOMER)) == 1  # no second ticket
    page.screenshot(path=SCREENSHOT, full_page=True)
    assert tab.errors == []

"""`accord mail-in`: the real command in its own process receives mail over SMTP, turns it into
a ticket, refuses other recipients, and stops cleanly on SIGTERM."""

from __future__ import annotations

import os
import signal
import smtplib
import socket
import subprocess
import sys
import time
from email.message import EmailMessage

import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from accord.cli import app
from accord.core.db import session_scope
from accord.models import Ticket, TicketMessage

SUPPORT = "help@example.com"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_port(port: int, proc: subprocess.Popen[bytes], seconds: float = 30.0) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"mail-in exited early: {proc.stdout.read().decode()}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise AssertionError("mail-in did not start listening")


def test_help_names_the_options() -> None:
    result = CliRunner().invoke(app, ["mail-in", "--help"])
    assert result.exit_code == 0
    assert "--host" in result.output and "--port" in result.output
    assert "ACCORD_MAIL_IN_PORT" in result.output


def test_mail_in_command_receives_mail(db: str, tmp_path) -> None:
    port = free_port()
    env = {**os.environ, "ACCORD_DATABASE_URL": db, "ACCORD_MAIL_IN_ADDRESSES": SUPPORT,
           "ACCORD_MAIL_IN_PORT": str(port), "ACCORD_ATTACHMENTS_DIR": str(tmp_path)}
    proc = subprocess.Popen([sys.executable, "-m", "accord.cli", "mail-in"], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        wait_for_port(port, proc)
        msg = EmailMessage()
        msg["From"] = "Grace Hopper <grace@example.com>"
        msg["To"] = SUPPORT
        msg["Subject"] = "A moth in the relay"
        msg["Message-ID"] = "<moth@customer.example>"
        msg.set_content("Found a bug.")
        with smtplib.SMTP("127.0.0.1", port, timeout=10) as client:
            assert client.send_message(msg) == {}
            with pytest.raises(smtplib.SMTPRecipientsRefused):
                client.sendmail("grace@example.com", ["other@example.com"], msg.as_bytes())
    finally:
        proc.send_signal(signal.SIGTERM)
        output = proc.communicate(timeout=20)[0].decode()
    assert proc.returncode == 0, output
    assert f"smtp://127.0.0.1:{port}/" in output and "Mail-in stopped." in output
    with session_scope(db, write=False) as s:
        ticket = s.scalars(select(Ticket)).one()
        assert (ticket.requester_email, ticket.subject) == ("grace@example.com",
                                                            "A moth in the relay")
        assert s.scalar(select(TicketMessage.mail_message_id)) == "<moth@customer.example>"

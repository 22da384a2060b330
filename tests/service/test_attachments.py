"""Ticket attachments (TRUST.md, item 14): server-generated storage keys whatever the file name,
size limits as a clear problem, checksums, safe downloads, and erasure of the files."""

from __future__ import annotations

import hashlib

import pytest
from sqlalchemy import select

from accord.core import db as dbmod
from accord.core.errors import Problem
from accord.core.settings import reset_settings
from accord.models.service import Ticket, TicketAttachment
from accord.service import attachments, tickets
from tests.access.helpers import assert_problem, count
from tests.service.tickets_helpers import (
    API,
    customer_ticket,
    files_dir,  # noqa: F401 - fixture
    load,
)

HOSTILE = ("../../etc/passwd", "..\\..\\boot.ini", "/etc/shadow", "a\x00b.txt",
           "CON", "<script>x</script>.html", "   ", "..")


def _upload(client, actor, tid: int, name: str, data: bytes, kind: str = "text/plain"):
    return client.post(f"{API}/{tid}/attachments", headers=actor.headers,
                       files=[("files", (name, data, kind))])


def _all_files(root) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*") if p.is_file()}


def test_storage_key_never_uses_the_file_name(db, client, make_actor, files_dir, tmp_path):  # noqa: F811
    agent = make_actor("support")
    tid = customer_ticket(db)
    for name in HOSTILE:
        r = _upload(client, agent, tid, name, name.encode() or b"empty")
        assert r.status_code == 201, (name, r.text)
    with dbmod.session_scope(db) as s:
        rows = list(s.scalars(select(TicketAttachment).order_by(TicketAttachment.id)))
        keys = [r.storage_key for r in rows]
        names = [r.filename for r in rows]
    assert len(set(keys)) == len(HOSTILE)
    for key in keys:
        assert attachments.KEY_PATTERN.match(key)
    # every file is inside the attachments directory, under its key, and nowhere else
    assert _all_files(files_dir) == {f"{k[:2]}/{k}" for k in keys}
    assert not (tmp_path / "etc").exists() and not (files_dir.parent / "etc").exists()
    assert names[0] == "passwd" and names[1] == "boot.ini" and names[2] == "shadow"
    assert all("/" not in n and "\\" not in n and "\x00" not in n for n in names)
    assert names[-2:] == ["attachment", "attachment"]  # blank or dots only: a neutral name


def test_download_headers_are_safe(db, client, make_actor, files_dir):  # noqa: F811
    agent = make_actor("support")
    payload = b"<script>alert(1)</script>"
    tid = customer_ticket(db, attachments=[
        tickets.NewAttachment('evil"; x=".html', "text/html", payload)])
    [meta] = client.get(f"{API}/{tid}/attachments", headers=agent.headers).json()
    assert meta["sha256"] == hashlib.sha256(payload).hexdigest()
    assert meta["size_bytes"] == len(payload) and meta["content_type"] == "text/html"
    down = client.get(meta["download_url"], headers=agent.headers)
    assert down.status_code == 200 and down.content == payload
    assert down.headers["content-type"] == "application/octet-stream"  # never rendered
    assert down.headers["x-content-type-options"] == "nosniff"
    disposition = down.headers["content-disposition"]
    assert disposition.startswith('attachment; filename="evil__ x=_.html"')
    assert disposition.count('"') == 2  # the quote in the name cannot end the parameter
    assert "filename*=UTF-8''evil%22%3B%20x%3D%22.html" in disposition
    assert "sandbox" in down.headers["content-security-policy"]


def test_too_large_is_a_clear_problem(db, client, make_actor, files_dir, monkeypatch):  # noqa: F811
    agent = make_actor("support")
    tid = customer_ticket(db)
    monkeypatch.setenv("ACCORD_ATTACHMENT_MAX_BYTES", "10")
    reset_settings()
    try:
        body = assert_problem(_upload(client, agent, tid, "big.bin", b"x" * 11), 413, "files.0")
        assert "10 bytes" in body["detail"]
        r = client.post(f"{API}/{tid}/messages", headers=agent.headers,
                        data={"body_text": "see file"},
                        files=[("attachments", ("ok.txt", b"small", "text/plain")),
                               ("attachments", ("big.txt", b"y" * 50, "text/plain"))])
        assert_problem(r, 413, "attachments.1")
        assert _upload(client, agent, tid, "ok.bin", b"x" * 10).status_code == 201
    finally:
        monkeypatch.delenv("ACCORD_ATTACHMENT_MAX_BYTES")
        reset_settings()
    assert count(db, "ticket_attachments") == 1
    assert count(db, "ticket_messages") == 1  # the refused reply left nothing behind
    assert len(_all_files(files_dir)) == 1


def test_service_checks_size_before_writing(db, files_dir, monkeypatch):  # noqa: F811
    monkeypatch.setenv("ACCORD_ATTACHMENT_MAX_BYTES", "4")
    reset_settings()
    try:
        with pytest.raises(Problem) as exc:
            customer_ticket(db, attachments=[
                tickets.NewAttachment("a.txt", "text/plain", b"1234"),
                tickets.NewAttachment("b.txt", "text/plain", b"12345")])
        assert (exc.value.status, exc.value.field) == (413, "attachments.1")
    finally:
        monkeypatch.delenv("ACCORD_ATTACHMENT_MAX_BYTES")
        reset_settings()
    assert count(db, "tickets") == 0
    assert not files_dir.exists() or _all_files(files_dir) == set()


def test_mail_attachments_are_stored_with_the_message(db, files_dir):  # noqa: F811
    tid = customer_ticket(db, attachments=[
        tickets.NewAttachment("../x/invoice.pdf", "application/pdf; name=x", b"%PDF")])
    customer_id = load(db, tid).customer_id
    with dbmod.session_scope(db) as s:
        [a] = s.scalars(select(TicketAttachment)).all()
        assert (a.ticket_id, a.filename, a.content_type) == (tid, "invoice.pdf",
                                                             "application/pdf")
        assert a.message_id is not None and a.customer_id == customer_id
        assert attachments.path_for(a.storage_key).read_bytes() == b"%PDF"


def test_erasure_deletes_the_files(db, files_dir):  # noqa: F811
    mine = customer_ticket(db, email="gone@example.com", attachments=[
        tickets.NewAttachment("a.txt", "text/plain", b"secret canary")])
    other = customer_ticket(db, email="stays@example.com", attachments=[
        tickets.NewAttachment("b.txt", "text/plain", b"keep")])
    with dbmod.session_scope(db) as s:
        cid = s.get(Ticket, mine).customer_id
        assert attachments.delete_customer_files(s, cid) == 1
    with dbmod.session_scope(db) as s:
        left = s.scalars(select(TicketAttachment)).all()
        assert [a.ticket_id for a in left] == [other]
    data = [(files_dir / f).read_bytes() for f in _all_files(files_dir)]
    assert data == [b"keep"]


def test_path_for_refuses_anything_but_a_key():
    for bad in ("../../etc/passwd", "ab", "A" * 32, "0" * 31 + "/"):
        with pytest.raises(ValueError):
            attachments.path_for(bad)


def test_attachments_may_exceed_the_general_body_limit(db, client, make_actor,
                                                       files_dir):  # noqa: F811
    """A 1.5 MB file is over ACCORD_MAX_BODY_BYTES (1 MB) but within the attachment limit."""
    agent = make_actor("support")
    tid = customer_ticket(db)
    big = b"p" * 1_500_000
    r = _upload(client, agent, tid, "scan.pdf", big, "application/pdf")
    assert r.status_code == 201, r.text
    assert count(db, "ticket_attachments") == 1
    # elsewhere the general limit still holds
    assert_problem(client.post("/api/v1/customers", headers=agent.headers, content=big,
                               params={}), 413, "body")

"""Ticket attachments on disk: server-generated storage keys, size limits, checksums, erasure.

Why it is built this way (TRUST.md, item 14): the user's file name is display metadata only and
never reaches the file system. A file is stored under `<dir>/<k[:2]>/<k>` where `k` is
`secrets.token_hex(16)`; the directory is `ACCORD_ATTACHMENTS_DIR` (default
`<ACCORD_DATA_DIR>/attachments`). The declared content type is stored for the download's
header only (a browser gets `Content-Disposition: attachment` and `nosniff`, and types that
would run in the page – HTML, SVG, XML – are served as `application/octet-stream`).

A file is written before the transaction that records it commits; if that transaction rolls
back the file is an orphan without a row (never the reverse: a row always has its file).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import secrets
import unicodedata
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from sqlalchemy import select
from sqlalchemy.orm import Session

from accord.access.policy import Principal
from accord.core.errors import NotFound, Problem
from accord.core.settings import get_settings
from accord.models.service import Ticket, TicketAttachment

if TYPE_CHECKING:
    from accord.service.tickets import NewAttachment

KEY_PATTERN = re.compile(r"^[0-9a-f]{32}$")
MAX_FILES = 10
_CONTENT_TYPE = re.compile(r"^[a-z0-9][a-z0-9!#$&^_.+-]{0,62}/[a-z0-9][a-z0-9!#$&^_.+-]{0,62}$")
# Types a browser would render or run as a document of our origin.
ACTIVE_TYPES = frozenset({"text/html", "application/xhtml+xml", "image/svg+xml", "text/xml",
                          "application/xml", "text/javascript", "application/javascript"})


def storage_dir() -> Path:
    settings = get_settings()
    configured = settings.attachments_dir
    if configured is not None and str(configured) not in ("", "."):
        return Path(configured)
    return settings.data_dir / "attachments"


def path_for(key: str) -> Path:
    """The file of a storage key; anything but a key we generate is refused."""
    if not KEY_PATTERN.match(key):
        raise ValueError("not a storage key")
    return storage_dir() / key[:2] / key


def safe_filename(name: str | None) -> str:
    """The display name: the last path component, printable, at most 255 characters."""
    base = re.split(r"[\\/]", name or "")[-1]
    base = "".join(ch for ch in unicodedata.normalize("NFC", base)
                   if unicodedata.category(ch)[0] != "C")
    base = base.strip().strip(".").strip()
    return base[:255] or "attachment"


def safe_content_type(value: str | None) -> str:
    text = (value or "").split(";", 1)[0].strip().lower()
    return text if _CONTENT_TYPE.match(text) else "application/octet-stream"


def max_bytes() -> int:
    return get_settings().attachment_max_bytes


def check_sizes(files: Sequence[NewAttachment], field: str = "attachments") -> None:
    """Refuse before anything is written: too many files (422) or one too large (413)."""
    if len(files) > MAX_FILES:
        raise Problem(f"at most {MAX_FILES} attachments per message", field=field,
                      status=422, title="Validation failed")
    limit = max_bytes()
    for i, f in enumerate(files):
        if len(f.data) > limit:
            raise Problem(f"attachment {i} ({safe_filename(f.filename)!r}) is larger than "
                          f"{limit} bytes", field=f"{field}.{i}",
                          status=413, title="Payload too large")


def _write(key: str, data: bytes) -> None:
    target = path_for(key)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{key}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def store(session: Session, ticket: Ticket, message_id: int | None,
          file: NewAttachment) -> TicketAttachment:
    """Write the bytes under a fresh key and record them (no policy check: callers are the
    tickets write path, which has checked it)."""
    check_sizes([file])
    key = secrets.token_hex(16)
    _write(key, file.data)
    row = TicketAttachment(ticket_id=ticket.id, message_id=message_id,
                           customer_id=ticket.customer_id, storage_key=key,
                           filename=safe_filename(file.filename),
                           content_type=safe_content_type(file.content_type),
                           size_bytes=len(file.data),
                           sha256=hashlib.sha256(file.data).hexdigest())
    session.add(row)
    session.flush()
    return row


def for_ticket(session: Session, ticket_id: int) -> list[TicketAttachment]:
    return list(session.scalars(select(TicketAttachment)
                                .where(TicketAttachment.ticket_id == ticket_id)
                                .order_by(TicketAttachment.id)))


def by_message(rows: Sequence[TicketAttachment]) -> dict[int | None, list[TicketAttachment]]:
    out: dict[int | None, list[TicketAttachment]] = {}
    for row in rows:
        out.setdefault(row.message_id, []).append(row)
    return out


def get_attachment(session: Session, principal: Principal, attachment_id: int
                   ) -> TicketAttachment:
    """404 unless the caller may read the attachment's ticket (no existence oracle)."""
    from accord.service import tickets

    row = session.get(TicketAttachment, attachment_id)
    if row is None:
        raise NotFound(f"attachment {attachment_id} does not exist")
    try:
        tickets.get_ticket(session, principal, row.ticket_id)
    except NotFound:
        raise NotFound(f"attachment {attachment_id} does not exist") from None
    return row


def download_headers(row: TicketAttachment) -> dict[str, str]:
    """Always a download; the name is an ASCII fallback plus the RFC 5987 UTF-8 form."""
    name = safe_filename(row.filename)
    ascii_name = "".join(ch if 32 <= ord(ch) < 127 and ch not in '"\\;' else "_"
                         for ch in name)
    return {
        "Content-Disposition": (f'attachment; filename="{ascii_name}"; '
                                f"filename*=UTF-8''{quote(name, safe='')}"),
        "X-Content-Type-Options": "nosniff",
        "Content-Security-Policy": "default-src 'none'; sandbox",
        "Cache-Control": "private, no-store",
    }


def served_type(row: TicketAttachment) -> str:
    kind = safe_content_type(row.content_type)
    return "application/octet-stream" if kind in ACTIVE_TYPES else kind


def attachment_out(row: TicketAttachment) -> Any:
    from accord.service.tickets_schemas import AttachmentOut

    out = AttachmentOut.model_validate(row)
    out.download_url = f"/api/v1/ticket-attachments/{row.id}"
    return out


def delete_customer_files(session: Session, customer_id: int) -> int:
    """Erasure: delete the person's attachment files and rows (call it before the ticket rows
    go, since it finds the files through them). Returns how many were removed."""
    rows = list(session.scalars(select(TicketAttachment)
                                .where(TicketAttachment.customer_id == customer_id)))
    for row in rows:
        with contextlib.suppress(ValueError):  # not a key we generated: nothing on disk
            path_for(row.storage_key).unlink(missing_ok=True)
        session.delete(row)
    session.flush()
    return len(rows)

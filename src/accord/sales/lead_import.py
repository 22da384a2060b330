"""Leads from a file: CSV (any delimiter and encoding), JSON Lines or Excel.

Columns are matched to lead fields by name (case, spaces and dashes ignored, a few common
aliases such as "E-mail address" or "Company name"); other columns are ignored. Each row is
validated like a form submission; a bad row is reported with its line number and reason while
the good rows land. Every row goes through the lead capture path (matching, assignment, SLA),
with a dedupe key made of the row's normalised values, so importing the same file again, or a
file repeating rows of an earlier one, creates nothing new.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import ValidationError
from sqlalchemy.orm import Session

from accord.access.policy import Principal
from accord.access.service import require
from accord.core.errors import ValidationProblem
from accord.integration import readers
from accord.sales import leads
from accord.sales.leads_schemas import CAPTURE_FIELDS, FIELD_LIMITS, LeadCreate

ALIASES = {
    "firstname": "first_name", "givenname": "first_name", "forename": "first_name",
    "lastname": "last_name", "surname": "last_name", "familyname": "last_name",
    "email": "email", "emailaddress": "email", "mail": "email",
    "phone": "phone", "phonenumber": "phone", "telephone": "phone", "mobile": "phone",
    "company": "company", "companyname": "company", "organisation": "company",
    "organization": "company", "account": "company",
    "jobtitle": "job_title", "title": "job_title", "position": "job_title",
    "website": "website", "url": "website", "industry": "industry",
    "employees": "employees", "numberofemployees": "employees", "companysize": "employees",
    "country": "country", "language": "preferred_language",
    "preferredlanguage": "preferred_language", "notes": "notes", "comment": "notes",
    "message": "notes",
}
assert set(ALIASES.values()) <= set(CAPTURE_FIELDS)
_JUNK = re.compile(r"[\s_\-.]+")
MAX_ERRORS = 1000


@dataclass
class ImportReport:
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    errors: list[dict[str, Any]] = field(default_factory=list)

    def error(self, line: int, reason: str, field_name: str | None = None) -> None:
        if len(self.errors) < MAX_ERRORS:
            self.errors.append({"line": line, "field": field_name, "reason": reason})

    def as_dict(self) -> dict[str, Any]:
        return {"created": self.created, "updated": self.updated, "unchanged": self.unchanged,
                "errors": self.errors}


def column_map(columns: list[str]) -> dict[str, str]:
    """File column → lead field, for the columns Accord recognises."""
    out: dict[str, str] = {}
    for column in columns:
        key = _JUNK.sub("", column.strip().lower())
        target = ALIASES.get(key)
        if target is not None and target not in out.values():
            out[column] = target
    return out


def _row_values(row: dict[str, Any], columns: dict[str, str]) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for column, target in columns.items():
        raw = row.get(column)
        if raw is None or isinstance(raw, (dict, list)):
            continue
        text = readers.cell_text(raw).strip() if not isinstance(raw, str) else raw.strip()
        if not text:
            continue
        if len(text) > FIELD_LIMITS[target]:
            raise ValidationProblem(f"{target} is longer than {FIELD_LIMITS[target]} characters",
                                    field=target)
        values[target] = text
    try:
        parsed = LeadCreate.model_validate(values)
    except ValidationError as exc:
        err = exc.errors()[0]
        name = str(err["loc"][0]) if err.get("loc") else None
        message = str(err.get("msg", "invalid")).removeprefix("Value error, ")
        raise ValidationProblem(message, field=name) from None
    return parsed.model_dump(exclude_none=True, include=set(values))


def _key(values: dict[str, Any]) -> str:
    norm = {k: " ".join(str(v).split()).casefold() for k, v in sorted(values.items())}
    return "import:" + hashlib.sha256(json.dumps(norm, sort_keys=True).encode()).hexdigest()


def import_leads(session: Session, principal: Principal, path: Path | str,
                 name: str | None = None) -> ImportReport:
    """Import every good row in the caller's transaction; each row in its own savepoint."""
    require(principal, "leads", "create")
    report = ImportReport()
    try:
        info = readers.inspect(Path(path), name)
    except (readers.UnsupportedFile, UnicodeError, ValueError) as exc:
        raise ValidationProblem(str(exc), field="file") from None
    columns = column_map(info.columns)
    if not any(t in columns.values() for t in ("email", "phone", "last_name", "company")):
        raise ValidationProblem("no recognised column: the file needs at least an e-mail, "
                                "phone, last name or company column", field="file")
    label = (name or Path(path).name)[:200]
    for line, row in readers.read_rows(Path(path), info):
        if isinstance(row, readers.Unreadable):
            report.error(line, row.reason)
            continue
        try:
            values = _row_values(row, columns)
            with session.begin_nested():
                captured = leads.capture(
                    session, principal, values, source="import", source_detail=label,
                    kind="imported", detail={"file": label, "line": line},
                    dedupe_key=_key(values))
        except ValidationProblem as exc:
            report.error(line, exc.detail, exc.field)
            continue
        if captured.duplicate:
            report.unchanged += 1
        elif captured.created:
            report.created += 1
        else:
            report.updated += 1
    return report

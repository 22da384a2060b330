"""Leads from files: bad rows reported with line and reason while good rows land, re-import
creates nothing new, JSON Lines, the CLI command and the API upload."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy import func, select
from typer.testing import CliRunner

from accord.access.policy import SYSTEM
from accord.core import db as dbmod
from accord.core.errors import ValidationProblem
from accord.models.sales import Lead, LeadEngagement
from accord.sales.lead_import import column_map, import_leads
from tests.access.helpers import assert_problem

CSV = (
    "First Name;Last Name;E-mail address;Phone;Company name;Country;Employees;Shoe size\n"
    "Ada;Lovelace;ada@example.com;+44 20 7946 0958;Analytical;UK;12;38\n"
    "Bad;Mail;not-an-email;;;;;\n"
    "Charles;Babbage;charles@example.com;;Difference;Atlantis;;\n"
    "Grace;Hopper;grace@example.com;;Navy;US;lots;\n"
    ";;;;;;;\n"
    "Alan;Turing;alan@example.com;;Bletchley;GB;;\n"
)


def counts(db) -> tuple[int, int]:
    with dbmod.session_scope(db, write=False) as s:
        return (s.scalar(select(func.count()).select_from(Lead)),
                s.scalar(select(func.count()).select_from(LeadEngagement)))


def run(db, path: Path):
    with dbmod.session_scope(db) as s:
        return import_leads(s, SYSTEM, path)


def test_bad_rows_are_reported_good_rows_land(db, tmp_path):
    path = tmp_path / "leads.csv"
    path.write_text(CSV, encoding="utf-8")
    report = run(db, path)
    assert (report.created, report.updated, report.unchanged) == (2, 0, 0)
    assert [(e["line"], e["field"]) for e in report.errors] == [
        (3, "email"), (4, "country"), (5, "employees"), (6, None)]
    assert "e-mail" in report.errors[0]["reason"]
    with dbmod.session_scope(db, write=False) as s:
        ada = s.scalars(select(Lead).where(Lead.email_normalized == "ada@example.com")).one()
        assert (ada.source, ada.country, ada.employees, ada.phone_e164) == \
            ("import", "GB", 12, "+442079460958")
    # the same file again: nothing new, every good row unchanged, same errors
    again = run(db, path)
    assert (again.created, again.updated, again.unchanged) == (0, 0, 2)
    assert len(again.errors) == 4
    assert counts(db) == (2, 2)


def test_jsonl_and_a_known_person_updates(db, tmp_path):
    path = tmp_path / "leads.jsonl"
    rows = [{"email": "ada@example.com", "last_name": "Lovelace"},
            {"email": "ADA@example.com", "company": "Analytical", "job_title": "Countess"},
            ["not", "an", "object"]]
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n", encoding="utf-8")
    report = run(db, path)
    assert (report.created, report.updated) == (1, 1) and len(report.errors) == 1
    assert report.errors[0]["line"] == 3
    with dbmod.session_scope(db, write=False) as s:
        lead = s.scalars(select(Lead)).one()
        assert lead.company == "Analytical" and lead.job_title == "Countess"


def test_file_without_a_usable_column_is_refused(db, tmp_path):
    path = tmp_path / "x.csv"
    path.write_text("colour,size\nred,1\n", encoding="utf-8")
    with dbmod.session_scope(db) as s, pytest.raises(ValidationProblem) as refused:
        import_leads(s, SYSTEM, path)
    assert refused.value.field == "file"
    assert column_map(["E-Mail", "Company Name", "Job title", "foo"]) == {
        "E-Mail": "email", "Company Name": "company", "Job title": "job_title"}


def test_cli_import_leads(db, tmp_path):
    from accord.cli import app

    path = tmp_path / "leads.csv"
    path.write_text(CSV, encoding="utf-8")
    result = CliRunner().invoke(app, ["sales", "import-leads", str(path)])
    assert result.exit_code == 1, result.output  # some rows were refused
    assert "created 2" in result.output and "refused 4" in result.output
    assert "line 3: email:" in result.output
    result = CliRunner().invoke(app, ["sales", "import-leads", str(path)])
    assert "created 0" in result.output and "unchanged 2" in result.output
    assert counts(db) == (2, 2)


def test_api_upload(db, client, make_actor):
    marketing = make_actor("marketing")
    files = {"file": ("leads.csv", CSV.encode(), "text/csv")}
    r = client.post("/api/v1/leads/import", files=files, headers=marketing.headers)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["created"] == 2 and [e["line"] for e in body["errors"]] == [3, 4, 5, 6]
    analyst = make_actor("analyst")
    r = client.post("/api/v1/leads/import", files=files, headers=analyst.headers)
    assert_problem(r, 403)
    assert counts(db) == (2, 2)

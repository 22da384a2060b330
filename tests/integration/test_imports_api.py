"""The imports API: preview writes nothing, small files import in the request, large ones in a
job, reports download as CSV, and the policy decides who may do what."""

from __future__ import annotations

import csv
import io
import os
from pathlib import Path

import pytest
from sqlalchemy import func, select

from accord.access.policy import SYSTEM
from accord.core import jobs
from accord.core.settings import reset_settings
from accord.integration import imports
from accord.integration.sources import create_source
from accord.models import ImportRun, Job, SourceProfile, SourceRecord

CSV = ("Record ID,First Name,Last Name,Email,Phone Number,Country/Region,Lifecycle Stage\n"
       "1,ADA,LOVELACE,Ada@Example.com,020 7946 0018,United Kingdom,customer\n"
       "2,Grace,Hopper,grace@example,,US,lead\n"
       "3,,,,,,lead\n")


@pytest.fixture(autouse=True)
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "data"
    monkeypatch.setenv("ACCORD_DATA_DIR", str(folder))
    reset_settings()
    return folder


@pytest.fixture
def crm(session):
    source = create_source(session, SYSTEM, name="crm", kind="crm", default_country="GB")
    session.commit()
    return source


def count(session, model) -> int:
    n = session.scalar(select(func.count()).select_from(model))
    session.commit()
    return n


def upload(client, actor, body: bytes | str = CSV, *, name: str = "contacts.csv",
           preview: bool = False, **form: str):
    data = {"source": "crm", **form}
    content = body.encode("utf-8") if isinstance(body, str) else body
    return client.post("/api/v1/imports" + ("?preview=true" if preview else ""),
                       files={"file": (name, content, "text/csv")}, data=data,
                       headers=actor.headers)


def test_preview_shows_the_plan_and_standardised_rows_and_writes_nothing(client, admin, crm,
                                                                        session, data_dir):
    r = upload(client, admin, CSV.replace(",", ";"), preview=True)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["file"]["format"] == "csv"
    assert body["file"]["delimiter"] == ";"
    assert body["file"]["encoding"] == "utf-8"
    assert body["file"]["name"] == "contacts.csv"
    assert len(body["file"]["sha256"]) == 64
    assert body["mapping"]["layout"] == "hubspot"
    assert body["mapping"]["external_id"] == "Record ID"
    assert body["mapping"]["columns"]["Email"] == "email"
    assert body["unmapped"] == []
    assert body["mapping"]["columns"]["Lifecycle Stage"] == "cf.lifecycle_stage"
    ada, grace, nobody = body["rows"]
    assert ada["line_no"] == 2 and ada["external_id"] == "1"
    assert ada["values"]["first_name"] == "Ada" and ada["values"]["last_name"] == "Lovelace"
    assert ada["values"]["email"] == "ada@example.com"
    assert ada["values"]["phone"] == "+442079460018"
    assert ada["flags"] == {} and ada["error"] is None
    assert "email" in grace["flags"]
    assert nobody["error"] == "no usable name, e-mail, phone or national id"
    assert count(session, ImportRun) == 0
    assert count(session, SourceRecord) == 0
    assert list((data_dir / "imports").iterdir()) == []  # the upload was not kept


def test_a_small_file_imports_in_the_request(client, admin, crm, session, data_dir):
    r = upload(client, admin)
    assert r.status_code == 201, r.text
    run = r.json()
    assert r.headers["Location"] == f"/api/v1/imports/{run['id']}"
    assert (run["status"], run["total"], run["accepted"], run["rejected"], run["flagged"]) == (
        "completed", 3, 2, 1, 1)
    assert run["file_name"] == "contacts.csv"
    assert count(session, SourceProfile) == 2
    assert list((data_dir / "imports").iterdir()) == []  # removed once imported

    again = upload(client, admin)
    assert again.status_code == 201
    assert (again.json()["unchanged"], again.json()["accepted"]) == (2, 0)

    listed = client.get("/api/v1/imports", headers=admin.headers).json()
    assert [i["id"] for i in listed["items"]] == [again.json()["id"], run["id"]]
    one = client.get(f"/api/v1/imports/{run['id']}", headers=admin.headers)
    assert one.status_code == 200 and one.json()["accepted"] == 2

    report = client.get(f"/api/v1/imports/{run['id']}/report.csv", headers=admin.headers)
    assert report.status_code == 200
    assert report.headers["content-type"].startswith("text/csv")
    assert "attachment" in report.headers["content-disposition"]
    table = list(csv.reader(io.StringIO(report.text)))
    assert table[1][3:10] == ["completed", "3", "2", "0", "0", "1", "1"]
    assert table[3] == ["line_no", "field", "reason", "row"]
    assert table[4][0] == "4" and "no usable name" in table[4][2]
    # Grace's e-mail was not taken: the report says so, with the value as the file wrote it
    assert table[5:7] == [[], ["line_no", "field", "reason", "value"]]
    assert table[7][:2] == ["3", "email"] and table[7][3] == "grace@example"
    assert len(table) == 8
    assert client.get("/api/v1/imports/999999", headers=admin.headers).status_code == 404


def test_a_large_file_is_imported_by_a_job(client, admin, crm, session, data_dir, monkeypatch,
                                           db):
    monkeypatch.setattr(imports, "INLINE_MAX_BYTES", 10)
    r = upload(client, admin)
    assert r.status_code == 202, r.text
    run = r.json()
    assert (run["status"], run["total"]) == ("running", 0)
    assert len(list((data_dir / "imports").iterdir())) == 1  # kept for the job
    job = session.scalar(select(Job).where(Job.kind == imports.IMPORT_JOB))
    session.commit()
    assert job.payload["import_id"] == run["id"]
    while jobs.run_one(db):
        pass
    done = client.get(f"/api/v1/imports/{run['id']}", headers=admin.headers).json()
    assert (done["status"], done["accepted"], done["rejected"]) == ("completed", 2, 1)
    assert list((data_dir / "imports").iterdir()) == []


def test_the_uploaded_name_is_never_a_path(client, admin, crm, data_dir, monkeypatch):
    monkeypatch.setattr(imports, "INLINE_MAX_BYTES", 10)
    r = upload(client, admin, name="../../etc/evil.csv")
    assert r.status_code == 202
    assert r.json()["file_name"] == "evil.csv"
    stored = list((data_dir / "imports").iterdir())
    assert len(stored) == 1
    assert stored[0].name.endswith(".upload") and "evil" not in stored[0].name
    assert not (data_dir.parent / "etc").exists()


def test_a_mapping_can_be_sent_and_bad_ones_are_refused(client, admin, crm, session):
    mapping = "external_id: Record ID\ncolumns: {Email: email, First Name: first_name}"
    r = upload(client, admin, mapping=mapping)
    assert r.status_code == 201, r.text
    columns = r.json()["mapping"]["columns"]
    assert columns["Email"] == "email" and columns["First Name"] == "first_name"
    assert columns["Last Name"] == "last_name"  # the columns it does not name are detected
    bad = upload(client, admin, mapping="columns: {Email: e_mail}")
    assert bad.status_code == 422
    assert bad.headers["content-type"].startswith("application/problem+json")
    assert bad.json()["errors"][0]["field"] == "mapping.columns.Email"
    assert "unknown field 'e_mail'" in bad.json()["detail"]
    missing = upload(client, admin, mapping="external_id: Customer No\ncolumns: {Email: email}")
    assert missing.status_code == 422 and "no column 'Customer No'" in missing.json()["detail"]
    nosource = upload(client, admin, source="nowhere")
    assert nosource.status_code == 422 and nosource.json()["field"] == "source"
    empty = upload(client, admin, b"")
    assert empty.status_code == 422 and empty.json()["field"] == "file"
    assert count(session, SourceProfile) == 2  # only the good upload landed


def test_an_excel_workbook_uploads_and_imports(client, admin, crm, session):
    openpyxl = pytest.importorskip("openpyxl")
    book = openpyxl.Workbook()
    book.active.append(["Record ID", "First Name", "Last Name", "Email"])
    book.active.append([7, "Ada", "Lovelace", "ada@example.com"])
    body = io.BytesIO()
    book.save(body)
    preview = upload(client, admin, body.getvalue(), name="contacts.xlsx", preview=True)
    assert preview.status_code == 200, preview.text
    assert preview.json()["file"]["format"] == "xlsx"
    r = upload(client, admin, body.getvalue(), name="contacts.xlsx")
    assert r.status_code == 201, r.text
    assert (r.json()["accepted"], r.json()["rejected"]) == (1, 0)
    profile = session.scalar(select(SourceProfile))
    session.commit()
    assert (profile.external_id, profile.email) == ("7", "ada@example.com")
    broken = upload(client, admin, b"PK\x03\x04 not really a workbook", name="contacts.xlsx")
    assert broken.status_code == 422, broken.text
    assert broken.headers["content-type"].startswith("application/problem+json")


def test_files_over_a_megabyte_upload_through_the_body_limit(client, admin, crm, session,
                                                             monkeypatch):
    # the API's general body limit (1 MB) does not apply to import uploads
    monkeypatch.setattr(imports, "INLINE_MAX_BYTES", 10_000_000)
    note = "n" * 700  # few rows, long ones: the size matters here, not the row count
    rows = "".join(f"{i},Ada,Lovelace,ada{i}@example.com,,GB,lead,{note}\n" for i in range(1600))
    body = CSV.splitlines(keepends=True)[0].rstrip("\n") + ",Notes\n" + rows
    assert len(body) > 1_100_000
    preview = upload(client, admin, body, preview=True)
    assert preview.status_code == 200, preview.text
    r = upload(client, admin, body)
    assert r.status_code == 201, r.text
    assert r.json()["accepted"] == 1600


def test_uploads_over_the_limit_are_refused(client, admin, crm, data_dir, monkeypatch):
    monkeypatch.setattr(imports, "MAX_UPLOAD_BYTES", 100)
    r = client.post("/api/v1/imports", files={"file": ("big.csv", CSV.encode(), "text/csv")},
                    data={"source": "crm"}, headers=admin.headers)
    assert r.status_code == 413
    assert list((data_dir / "imports").iterdir()) == []


@pytest.mark.parametrize(("role", "read", "create"), [
    ("admin", 200, 201), ("manager", 200, 201), ("marketing", 200, 201),
    ("analyst", 200, 403), ("support", 403, 403), ("sales", 403, 403),
])
def test_the_imports_policy(client, crm, make_actor, role, read, create):
    actor = make_actor(role)
    assert client.get("/api/v1/imports", headers=actor.headers).status_code == read
    assert upload(client, actor).status_code == create
    assert upload(client, actor, preview=True).status_code == (200 if create == 201 else 403)


def test_the_report_download_is_audited(client, admin, crm, session):
    from accord.models import AuditEntry

    run = upload(client, admin).json()
    client.get(f"/api/v1/imports/{run['id']}/report.csv", headers=admin.headers)
    entry = session.scalar(select(AuditEntry).where(AuditEntry.resource == "imports",
                                                    AuditEntry.action == "read"))
    assert entry is not None and entry.record_id == str(run["id"])


def test_no_upload_dir_escape_by_token(data_dir):
    from accord.core.errors import NotFound

    with pytest.raises(NotFound):
        imports.stored_upload("../../etc/passwd", 1)
    with pytest.raises(NotFound):
        imports.stored_upload("a" * 32, 1)
    assert os.sep not in imports.store_upload(io.BytesIO(b"x"), 3).path.name
    assert imports._display_name("C:\\Users\\me\\bad\x07\nname.csv") == "badname.csv"


# --- the web pages ---------------------------------------------------------------------------


def _browser(app, actor):
    import html
    import re

    from fastapi.testclient import TestClient

    from tests.web.conftest import login

    client = TestClient(app)
    assert login(client, actor.email).status_code == 303

    def hidden(page: str, name: str) -> str:
        found = re.search(rf'name="{name}"(?: value="([^"]*)"|[^>]*>([^<]*)</textarea>)', page)
        assert found, name
        return html.unescape(found.group(1) if found.group(1) is not None else found.group(2))

    return client, hidden


def test_upload_preview_confirm_and_report_pages(app, make_actor, crm, session, data_dir):
    from tests.web.conftest import inline_code
    from tests.web.seed import csrf_of

    client, hidden = _browser(app, make_actor("manager"))
    form = client.get("/imports/new")
    assert form.status_code == 200
    assert 'enctype="multipart/form-data"' in form.text
    assert 'href="/imports"' in form.text  # the navigation offers imports to this role
    token = csrf_of(form.text)
    page = client.post("/imports/preview", data={"csrf_token": token, "source": "crm"},
                       files={"file": ("hubspot.csv", CSV.encode(), "text/csv")})
    assert page.status_code == 200, page.text
    assert "Confirm import" in page.text
    assert 'data-fact="layout">Hubspot' in page.text
    assert 'data-flag="email"' in page.text  # grace@example is flagged
    assert "Rejected: no usable name" in page.text
    assert "Lifecycle Stage" in page.text  # listed as kept in the raw record only
    assert inline_code(page.text) == []
    assert count(session, ImportRun) == 0 and count(session, SourceRecord) == 0
    assert len(list((data_dir / "imports").iterdir())) == 1  # waiting for the confirmation

    done = client.post("/imports/confirm", data={
        "csrf_token": token, "token": hidden(page.text, "token"), "source": "crm",
        "file_name": hidden(page.text, "file_name"), "mapping": hidden(page.text, "mapping")},
        follow_redirects=False)
    assert done.status_code == 303, done.text
    report = client.get(done.headers["location"])
    assert report.status_code == 200
    assert 'data-count="accepted">2<' in report.text
    assert 'data-count="rejected">1<' in report.text
    assert 'data-line="4"' in report.text
    assert 'data-count="flagged">1<' in report.text
    assert 'data-flag-line="3" data-flag="email"' in report.text
    assert "grace@example" in report.text  # the value as written
    assert "/report.csv" in report.text
    assert inline_code(report.text) == []
    run = session.scalar(select(ImportRun))
    session.commit()
    assert (run.file_name, run.mapping["layout"]) == ("hubspot.csv", "hubspot")
    assert list((data_dir / "imports").iterdir()) == []
    listing = client.get("/imports")
    assert "hubspot.csv" in listing.text and f'data-import="{run.id}"' in listing.text


def test_pages_refuse_bad_input_and_other_roles(app, make_actor, crm, session, data_dir):
    from tests.web.seed import csrf_of

    client, _ = _browser(app, make_actor("admin"))
    token = csrf_of(client.get("/imports/new").text)
    no_csrf = client.post("/imports/preview", data={"source": "crm"},
                          files={"file": ("a.csv", CSV.encode(), "text/csv")})
    assert no_csrf.status_code == 403
    bad = client.post("/imports/preview",
                      data={"csrf_token": token, "source": "crm", "mapping": "columns: {x: y}"},
                      files={"file": ("a.csv", CSV.encode(), "text/csv")})
    assert bad.status_code == 422
    assert "unknown field" in bad.text and 'id="err-mapping"' in bad.text
    stale = client.post("/imports/confirm", data={"csrf_token": token, "token": "f" * 32,
                                                  "source": "crm", "mapping": ""})
    assert stale.status_code == 422 and "no longer available" in stale.text
    assert not list(data_dir.glob("imports/*"))  # nothing stored for a refused upload
    assert count(session, ImportRun) == 0

    support, _ = _browser(app, make_actor("support"))
    assert 'href="/imports"' not in support.get("/customers").text
    assert support.get("/imports").status_code == 403
    analyst, _ = _browser(app, make_actor("analyst"))
    assert analyst.get("/imports").status_code == 200
    assert analyst.get("/imports/new").status_code == 403

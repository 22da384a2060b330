"""File imports on SQLite and PostgreSQL: bad rows never stop good ones, re-imports change
nothing, and an interrupted (even killed) import resumes with nothing lost or duplicated."""

from __future__ import annotations

import csv
import io
import json
import os
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import func, select

from accord.access.policy import SYSTEM
from accord.core import db as dbmod
from accord.core.errors import Conflict, Forbidden, ValidationProblem
from accord.integration import imports
from accord.integration.imports import run_import, write_report
from accord.integration.mapping import load_mapping
from accord.integration.sources import create_source
from accord.models import ImportRejection, ImportRun, Order, SourceProfile, SourceRecord

ROOT = Path(__file__).resolve().parents[2]
HEADER = ["Record ID", "First Name", "Last Name", "Email", "Phone Number", "City",
          "Country/Region", "Lifecycle Stage"]


def write_csv(path: Path, rows: list[list[str]], header: list[str] = HEADER,
              delimiter: str = ",") -> Path:
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh, delimiter=delimiter)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def count(session, model, *where) -> int:
    n = session.scalar(select(func.count()).select_from(model).where(*where))
    session.commit()  # a read on a SQLite write session holds the lock the import needs
    return n


@pytest.fixture
def crm(session):
    source = create_source(session, SYSTEM, name="crm", kind="crm", default_country="GB")
    session.commit()
    return source


def people(n: int, start: int = 1) -> list[list[str]]:
    return [[str(i), f"Person{i}", f"Family{i}", f"person{i}@example.com",
             f"020 7946 {i % 10000:04d}", "London", "United Kingdom", "lead"]
            for i in range(start, start + n)]


def test_bad_rows_are_reported_with_line_and_reason_while_good_rows_land(db, session, crm,
                                                                        tmp_path):
    rows = people(3)
    rows.insert(1, ["90", "", "", "", "", "Leeds", "GB", "lead"])  # line 3: nobody
    rows.append(["91", "", "", "not-an-email", "12", "", "", ""])  # line 6: nothing usable
    path = write_csv(tmp_path / "contacts.csv", rows)
    run = run_import(db, SYSTEM, "crm", path)
    assert (run.status, run.total, run.accepted, run.rejected) == ("completed", 5, 3, 2)
    assert run.finished_at is not None
    assert run.mapping["external_id"] == "Record ID"
    assert run.mapping["layout"] == "hubspot"
    rejections = session.scalars(select(ImportRejection).order_by(ImportRejection.line_no)).all()
    assert [r.line_no for r in rejections] == [3, 6]
    assert all("no usable name, e-mail, phone" in r.reason for r in rejections)
    assert "e-mail" in rejections[1].reason or "email" in rejections[1].reason
    assert json.loads(rejections[0].raw_row)["City"] == "Leeds"
    profiles = session.scalars(select(SourceProfile).order_by(SourceProfile.external_id)).all()
    assert [p.external_id for p in profiles] == ["1", "2", "3"]
    assert profiles[0].email == "person1@example.com"
    assert profiles[0].phone == "+442079460001"
    assert profiles[0].country == "GB"
    # unmapped columns are kept in the raw record
    record = session.scalar(select(SourceRecord).where(SourceRecord.external_id == "1"))
    assert record.payload["Lifecycle Stage"] == "lead"
    assert (record.import_id, record.line_no) == (run.id, 2)


def test_reimporting_the_same_file_changes_nothing_and_a_changed_row_is_an_update(
        db, session, crm, tmp_path):
    path = write_csv(tmp_path / "v1.csv", people(5))
    first = run_import(db, SYSTEM, "crm", path)
    assert (first.accepted, first.unchanged) == (5, 0)
    records, profiles = count(session, SourceRecord), count(session, SourceProfile)

    again = run_import(db, SYSTEM, "crm", path)
    assert again.id != first.id  # a finished import is not resumed: it runs again ...
    assert (again.status, again.total, again.unchanged, again.accepted, again.updated) == (
        "completed", 5, 5, 0, 0)  # ... and changes nothing
    assert (count(session, SourceRecord), count(session, SourceProfile)) == (records, profiles)

    rows = people(5)
    rows[2][2] = "Married-Name"
    changed = run_import(db, SYSTEM, "crm", write_csv(tmp_path / "v2.csv", rows))
    assert (changed.updated, changed.unchanged, changed.accepted) == (1, 4, 0)
    assert count(session, SourceRecord) == records + 1  # raw is append-only
    assert count(session, SourceProfile) == profiles
    profile = session.scalar(select(SourceProfile).where(SourceProfile.external_id == "3"))
    assert (profile.last_name, profile.version) == ("Married-Name", 2)


def test_orders_with_bad_totals_are_rejected_by_line(db, session, crm, tmp_path):
    run_import(db, SYSTEM, "crm", write_csv(tmp_path / "people.csv", people(2)))
    orders = write_csv(tmp_path / "orders.csv", [
        ["A-1", "1", "2024-03-01", "19.99", "EUR", "paid"],
        ["A-2", "2", "2024-03-02", "twelve", "EUR", "paid"],
        ["A-3", "", "2024-03-03", "5.00", "EUR", "paid"],
        ["A-4", "2", "2024-03-04", "1,234.50", "GBP", "refunded"],
    ], header=["order_id", "customer_id", "order_date", "total", "currency", "status"])
    run = run_import(db, SYSTEM, "crm", orders)
    assert run.mapping["kind"] == "order"
    assert (run.total, run.accepted, run.rejected) == (4, 2, 2)
    bad = {r.line_no: r for r in session.scalars(select(ImportRejection)
                                                 .where(ImportRejection.import_id == run.id))}
    assert set(bad) == {3, 4}
    assert bad[3].field == "order.total" and "not an amount" in bad[3].reason
    assert bad[4].field == "customer"
    # the customers are not resolved yet: the orders wait, with their canonical fields
    pending = session.scalars(select(SourceRecord).where(SourceRecord.kind == "order",
                                                         SourceRecord.status != "rejected")
                              .order_by(SourceRecord.line_no)).all()
    assert [(r.external_id, r.subject_key, r.status) for r in pending] == [
        ("A-1", "1", "pending"), ("A-4", "2", "pending")]
    kept = session.scalars(select(SourceRecord).where(SourceRecord.status == "rejected")
                           .order_by(SourceRecord.line_no)).all()
    assert [(r.line_no, r.reason.split(":")[0]) for r in kept] == [(3, "order.total"),
                                                                    (4, "customer")]
    assert pending[1].fields["order.total"] == "1,234.50"
    assert count(session, Order) == 0


def test_a_mapping_file_with_custom_fields_dates_and_a_delimiter(db, session, crm, tmp_path):
    path = write_csv(tmp_path / "kunden.csv", [
        ["K-1", "Jörg", "Weiß", "03.04.1985", "gold", "jw@example.de"],
        ["K-2", "Eva", "Klein", "12.11.1990", "", "eva@example.de"],
    ], header=["Kd-Nr", "Vorname", "Name", "Geburtstag", "Treue", "Mail"], delimiter=";")
    mapping = load_mapping("""
external_id: Kd-Nr
date_order: DMY
columns: {Vorname: first_name, Name: last_name, Geburtstag: date_of_birth,
          Treue: cf.loyalty_tier, Mail: email}
""")
    run = run_import(db, SYSTEM, "crm", path, mapping)
    assert (run.accepted, run.file_format, run.mapping["layout"]) == (2, "csv", "file")
    jorg = session.scalar(select(SourceProfile).where(SourceProfile.external_id == "K-1"))
    assert (jorg.first_name, jorg.last_name, jorg.date_of_birth.isoformat()) == (
        "Jörg", "Weiß", "1985-04-03")
    assert jorg.extra["cf.loyalty_tier"] == "gold"


def test_json_lines_and_excel_files_import(db, session, crm, tmp_path):
    openpyxl = pytest.importorskip("openpyxl")
    jsonl = tmp_path / "people.jsonl"
    jsonl.write_text("\n".join([
        json.dumps({"id": "J1", "name": {"first": "Ada", "last": "Lovelace"},
                    "email": "ada@example.com"}),
        "{broken",
        json.dumps({"id": "J2", "name": {"first": "Grace", "last": "Hopper"}}),
    ]) + "\n", encoding="utf-8")
    mapping = load_mapping("external_id: id\ncolumns: {name.first: first_name, "
                           "name.last: last_name, email: email}")
    run = run_import(db, SYSTEM, "crm", jsonl, mapping)
    assert (run.file_format, run.accepted, run.rejected) == ("jsonl", 2, 1)
    broken = session.scalar(select(ImportRejection).where(ImportRejection.import_id == run.id))
    assert broken.line_no == 2 and "invalid JSON" in broken.reason
    assert broken.raw_row == "{broken"
    session.commit()

    book = openpyxl.Workbook()
    sheet = book.active
    sheet.append(["Contact ID", "First Name", "Last Name", "Mailing City", "Phone", "Birthdate"])
    sheet.append([7001, "Alan", "Turing", "Wilmslow", 441625000000, datetime(1912, 6, 23)])
    sheet.append([7002, "Joan", "Clarke", "London", None, None])
    xlsx = tmp_path / "salesforce.xlsx"
    book.save(xlsx)
    run = run_import(db, SYSTEM, "crm", xlsx)
    assert (run.file_format, run.accepted, run.mapping["layout"]) == ("xlsx", 2, "salesforce")
    alan = session.scalar(select(SourceProfile).where(SourceProfile.external_id == "7001"))
    assert alan.date_of_birth.isoformat() == "1912-06-23"
    assert alan.city == "Wilmslow"


def test_the_demo_extracts_import_without_a_mapping(db, session, tmp_path):
    from accord.demo.extracts import write_extracts
    from accord.demo.generator import ensure_demo

    ensure_demo(60, 5, False, now=datetime(2026, 1, 15, tzinfo=UTC), progress=lambda *_: None)
    counts = write_extracts(tmp_path, seed=3)
    for name, kind in (("billing", "billing"), ("webshop", "webshop"), ("support", "support")):
        create_source(session, SYSTEM, name=name, kind=kind)
    session.commit()
    for name in ("billing", "webshop", "support"):
        run = run_import(db, SYSTEM, name, tmp_path / f"{name}.csv")
        assert run.mapping["layout"] == f"demo-{name}"
        assert run.total == counts[name]
        assert run.accepted + run.unchanged + run.rejected == counts[name]
        assert run.rejected <= counts[name] // 20, name
    truth = list(csv.DictReader((tmp_path / "truth.csv").open(encoding="utf-8")))
    keys = set(session.execute(select(SourceRecord.external_id)).scalars())
    assert len(keys) >= len(truth) * 0.95  # (almost) every extract row landed under its own id


@pytest.mark.parametrize("read_ahead", [False, True], ids=["in-process", "read-ahead"])
def test_an_interrupted_import_resumes_without_loss_or_duplicates(db, session, crm, tmp_path,
                                                                  monkeypatch, read_ahead):
    rows = people(40)
    for i in (5, 17, 33):  # three unusable rows
        rows[i] = [str(900 + i), "", "", "", "", "", "", ""]
    path = write_csv(tmp_path / "big.csv", rows)
    real = imports.ingest_batch
    calls = {"n": 0}

    def crash_in_the_third_batch(*args, **kwargs):
        out = real(*args, **kwargs)
        calls["n"] += 1
        if calls["n"] == 3:  # the batch's rows are written but not committed
            raise SystemExit("power cut")
        return out

    monkeypatch.setattr(imports, "ingest_batch", crash_in_the_third_batch)
    with pytest.raises(SystemExit):
        run_import(db, SYSTEM, "crm", path, batch_size=7, read_ahead=read_ahead)
    monkeypatch.setattr(imports, "ingest_batch", real)
    interrupted = session.scalar(select(ImportRun))
    assert (interrupted.status, interrupted.checkpoint_line, interrupted.total) == (
        "running", 15, 14)  # two batches of 7 rows (lines 2-15) were acknowledged
    session.commit()
    accepted = SourceRecord.status != "rejected"
    assert count(session, SourceRecord, accepted) == 13  # line 7 is unusable: kept, rejected
    assert count(session, SourceRecord, SourceRecord.status == "rejected") == 1

    resumed = run_import(db, SYSTEM, "crm", path, batch_size=7)
    assert resumed.id == interrupted.id
    assert resumed.status == "completed"
    assert resumed.total == 40
    assert (resumed.accepted, resumed.rejected, resumed.unchanged) == (37, 3, 0)
    assert count(session, SourceRecord, accepted) == 37
    assert count(session, SourceRecord, SourceRecord.status == "rejected") == 3
    assert count(session, SourceProfile) == 37
    assert [r.line_no for r in session.scalars(
        select(ImportRejection).order_by(ImportRejection.line_no))] == [7, 19, 35]


def test_a_failed_import_is_marked_and_resumed(db, session, crm, tmp_path, monkeypatch):
    path = write_csv(tmp_path / "p.csv", people(10))
    real = imports.ingest_batch
    calls = {"n": 0}

    def fail_second(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 2:
            raise RuntimeError("database went away")
        return real(*args, **kwargs)

    monkeypatch.setattr(imports, "ingest_batch", fail_second)
    with pytest.raises(RuntimeError):
        run_import(db, SYSTEM, "crm", path, batch_size=4)
    failed = session.scalar(select(ImportRun))
    assert (failed.status, failed.checkpoint_line) == ("failed", 5)
    assert "database went away" in failed.error
    session.commit()
    monkeypatch.setattr(imports, "ingest_batch", real)
    done = run_import(db, SYSTEM, "crm", path, batch_size=4)
    assert (done.id, done.status, done.total, done.accepted) == (failed.id, "completed", 10, 10)


def test_a_second_process_on_the_same_run_is_refused(db, session, crm, tmp_path):
    path = write_csv(tmp_path / "p.csv", people(10))

    def another_process_moves_the_checkpoint(run: ImportRun) -> None:
        with dbmod.session_scope(db) as other:
            other.get(ImportRun, run.id).checkpoint_line += 1

    with pytest.raises(Conflict, match="another process"):
        run_import(db, SYSTEM, "crm", path, batch_size=3,
                   progress=another_process_moves_the_checkpoint)
    run = session.scalar(select(ImportRun))
    assert run.status == "running"  # left to the process that owns it
    assert run.total == 3


def test_a_different_mapping_starts_a_new_run(db, session, crm, tmp_path, monkeypatch):
    path = write_csv(tmp_path / "p.csv", people(6))
    monkeypatch.setattr(imports, "ingest_batch", _raise_keyboard_interrupt)
    with pytest.raises(KeyboardInterrupt):
        run_import(db, SYSTEM, "crm", path, batch_size=2)
    monkeypatch.undo()
    mapping = load_mapping("external_id: Record ID\ncolumns: {Email: email}")
    run = run_import(db, SYSTEM, "crm", path, mapping)
    old = session.scalar(select(ImportRun).where(ImportRun.id != run.id))
    assert run.status == "completed" and old.status == "failed"
    assert "superseded" in old.error


def _raise_keyboard_interrupt(*args, **kwargs):
    raise KeyboardInterrupt


def test_imports_need_the_imports_grant(db, session, crm, tmp_path, make_actor):
    support = make_actor("support")
    with pytest.raises(Forbidden):
        run_import(db, support.principal, "crm", write_csv(tmp_path / "p.csv", people(1)))
    assert count(session, ImportRun) == 0


def test_a_file_whose_columns_mean_nothing_is_refused(db, crm, tmp_path):
    path = write_csv(tmp_path / "x.csv", [["1", "2"]], header=["foo", "bar"])
    with pytest.raises(ValidationProblem, match="no column of the file could be mapped"):
        run_import(db, SYSTEM, "crm", path)


def test_the_report_csv_lists_counts_and_rejections_safely(db, session, crm, tmp_path):
    rows = people(2) + [["=HYPERLINK(\"http://evil\")", "", "", "", "", "", "", ""]]
    run = run_import(db, SYSTEM, "crm", write_csv(tmp_path / "p.csv", rows))
    out = io.StringIO()
    write_report(session, run, out)
    table = list(csv.reader(io.StringIO(out.getvalue())))
    assert table[0][:9] == ["import_id", "source", "file", "status", "total", "accepted",
                            "updated", "unchanged", "rejected"]
    assert table[1][:9] == [str(run.id), "crm", "p.csv", "completed", "3", "2", "0", "0", "1"]
    assert table[2] == []
    assert table[3] == ["line_no", "field", "reason", "row"]
    assert table[4][0] == "4"
    assert "no usable name" in table[4][2]
    assert not table[4][3].startswith("=")  # no formula runs when opened in a spreadsheet
    assert table[5:7] == [[], ["line_no", "field", "reason", "value"]]
    # the generated names hold digits: flagged, with the name as the file wrote it
    assert [row[:2] + row[3:] for row in table[7:]] == [
        ["2", "first_name", "Person1"], ["2", "last_name", "Family1"],
        ["3", "first_name", "Person2"], ["3", "last_name", "Family2"]]


def _children(pid: int) -> list[int]:
    """The processes whose parent is `pid` (Linux)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(entry.name))
    return found


def _running(pid: int) -> bool:
    """Not ended (a zombie has ended: its new parent may not reap it at once)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


@pytest.mark.parametrize("read_ahead", ["--no-read-ahead", "--read-ahead"])
def test_a_killed_import_resumes_with_nothing_lost_or_duplicated(db, session, crm, tmp_path,
                                                                 read_ahead):
    """`accord import` in a subprocess, killed with SIGKILL after some batches committed, then
    run again: it completes, and the data equals that of one clean import. A process reading
    ahead for it ends with it."""
    total = 3000
    rows = people(total)
    bad_lines = set()
    for i in range(0, total, 97):  # unusable rows throughout
        rows[i] = [str(50_000 + i), "", "", "", "", "", "", ""]
        bad_lines.add(i + 2)
    for i in range(2, total, 211):  # exact duplicates of the previous row
        rows[i] = list(rows[i - 1])
    path = write_csv(tmp_path / "large.csv", rows)
    good = {tuple(r) for r, line in zip(rows, range(2, total + 2), strict=True)
            if line not in bad_lines}
    env = {**os.environ, "ACCORD_DATABASE_URL": db, "PYTHONPATH": str(ROOT / "src")}
    command = [sys.executable, "-m", "accord.cli", "import", str(path), "--source", "crm",
               "--batch-size", "25", read_ahead]
    proc = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    engine = dbmod.get_engine(db)
    deadline = time.monotonic() + 120
    checkpoint = 0
    try:
        while time.monotonic() < deadline and proc.poll() is None:
            with engine.connect() as conn:
                checkpoint = conn.execute(select(ImportRun.checkpoint_line)).scalar() or 0
            if checkpoint >= 300:
                break
            time.sleep(0.02)
        assert proc.poll() is None, "the import finished before it could be killed"
        helpers = _children(proc.pid)
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL
    if read_ahead == "--read-ahead":
        assert helpers, "no process was reading ahead"
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and any(map(_running, helpers)):
            time.sleep(0.05)
        assert not any(map(_running, helpers)), "a reader outlived the import"
    session.expire_all()
    killed = session.scalar(select(ImportRun))
    session.commit()
    assert killed.status == "running"
    assert 300 <= killed.checkpoint_line < total + 1
    acknowledged = {tuple(r) for r, line in zip(rows, range(2, total + 2), strict=True)
                    if line not in bad_lines and line <= killed.checkpoint_line}
    # nothing acknowledged was lost
    assert count(session, SourceRecord, SourceRecord.status != "rejected") == len(acknowledged)

    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    session.expire_all()
    run = session.scalar(select(ImportRun))
    assert (run.id, run.status) == (killed.id, "completed")
    assert run.total == total
    assert run.accepted + run.updated + run.unchanged + run.rejected == total
    assert run.rejected == len(bad_lines)
    assert count(session, SourceRecord, SourceRecord.status != "rejected") == len(good)
    assert count(session, SourceRecord, SourceRecord.status == "rejected") == len(bad_lines)
    assert count(session, SourceProfile) == len({r[0] for r in good})
    duplicated = session.execute(
        select(SourceProfile.source_id, SourceProfile.external_id)
        .group_by(SourceProfile.source_id, SourceProfile.external_id)
        .having(func.count() > 1)).all()
    assert duplicated == []
    assert {r.line_no for r in session.scalars(select(ImportRejection))} == bad_lines
    assert f"Import {run.id} completed" in done.stdout


def test_the_mappings_default_country_reads_national_numbers(db, session, crm, tmp_path):
    path = write_csv(tmp_path / "de.csv", [["k1", "Jonas", "Weber", "", "030 1234567", "Berlin",
                                            "", "lead"]],
                     header=["Kd-Nr", "Vorname", "Name", "E-Mail", "Telefon", "Ort", "Land",
                             "Status"])
    mapping = tmp_path / "map.yaml"
    mapping.write_text("external_id: Kd-Nr\ndefault_country: DE\ncolumns:\n  Vorname: first_name\n"
                       "  Name: last_name\n  Telefon: phone\n  Ort: city\n", encoding="utf-8")
    run = run_import(db, SYSTEM, "crm", path, load_mapping(mapping.read_text(encoding="utf-8")))
    assert (run.status, run.accepted) == ("completed", 1)
    profile = session.scalar(select(SourceProfile))
    # the source reads national numbers as British; this file's mapping says German
    assert (profile.phone, profile.country) == ("+49301234567", "DE")


def test_a_sources_saved_mapping_of_some_columns_leaves_the_rest_to_detection(db, session,
                                                                           tmp_path):
    """The docs' example: a shop's saved mapping names its German name columns; the id,
    e-mail, phone, postcode and city of its export are still found."""
    create_source(session, SYSTEM, name="shop", kind="webshop", default_country="DE",
                  mapping={"columns": {"Vorname": "first_name", "Name": "last_name"}})
    session.commit()
    path = tmp_path / "shop_export.csv"
    path.write_text("Kundennummer;Vorname;Name;E-Mail;Telefon;PLZ;Ort\n"
                    "K-1;Uta;Kern;uta@example.de;030 1234567;10115;Berlin\n", encoding="utf-8")
    run = run_import(db, SYSTEM, "shop", path)
    assert (run.status, run.accepted) == ("completed", 1)
    assert run.mapping["layout"] == "source+generic"
    profile = session.scalar(select(SourceProfile))
    session.commit()
    assert (profile.external_id, profile.first_name, profile.last_name) == ("K-1", "Uta", "Kern")
    assert (profile.email, profile.phone) == ("uta@example.de", "+49301234567")
    assert (profile.postcode, profile.city) == ("10115", "Berlin")

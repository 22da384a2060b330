"""An import read ahead by a second process lands exactly what the in-process one lands, and a
reader that dies fails the run without losing or duplicating anything."""

from __future__ import annotations

import csv
import multiprocessing
import os
import signal
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from accord.access.policy import SYSTEM
from accord.integration import imports
from accord.integration.imports import ReaderFailed, run_import
from accord.integration.ingest import Rejected, prepare_profiles
from accord.integration.sources import create_source
from accord.models import ImportRejection, ImportRun, Interaction, SourceProfile, SourceRecord

HEADER = ["Record ID", "First Name", "Last Name", "Email", "Phone Number", "Birth Date", "City",
          "Country/Region"]


def rows(n: int = 60) -> list[list[str]]:
    out = []
    for i in range(1, n + 1):
        out.append([str(i), f"Person{i}", f"Family{i}", f"person{i}@example.com",
                    f"020 7946 {i:04d}", f"{i % 28 + 1:02d}/05/1980", "London", "GB"])
    out[9] = ["10", "", "", "not-an-email", "12", "", "Leeds", "GB"]  # rejected: nobody usable
    out[19][3] = "broken@"  # a flagged e-mail, the rest of the row lands
    out[29][7] = "Atlantis"  # an unknown country, flagged
    out.append(list(out[4]))  # a replay of line 6 in the same file
    changed = list(out[6])
    changed[2] = "Renamed"
    out.append(changed)  # a new version of line 8
    return out


def write(path: Path, body: list[list[str]] | None = None,
          header: list[str] = HEADER) -> Path:
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(header)
        writer.writerows(rows() if body is None else body)
    return path


def landed(session: Any, source_id: int) -> tuple[list[Any], list[Any]]:
    profiles = session.scalars(select(SourceProfile).where(SourceProfile.source_id == source_id)
                               .order_by(SourceProfile.external_id)).all()
    skip = {"id", "source_id", "record_id", "observed_at"}
    names = [a.key for a in SourceProfile.__mapper__.column_attrs if a.key not in skip]
    values = [{c: getattr(p, c) for c in names}
              for p in profiles]
    records = session.execute(
        select(SourceRecord.line_no, SourceRecord.external_id, SourceRecord.content_hash,
               SourceRecord.payload, SourceRecord.fields, SourceRecord.status)
        .where(SourceRecord.source_id == source_id).order_by(SourceRecord.line_no)).all()
    return values, [tuple(r) for r in records]


COUNTS = ("status", "total", "accepted", "updated", "unchanged", "rejected", "checkpoint_line")


def rejections(session: Any, run: ImportRun) -> list[tuple[Any, ...]]:
    return [(r.line_no, r.field, r.reason, r.raw_row) for r in session.scalars(
        select(ImportRejection).where(ImportRejection.import_id == run.id)
        .order_by(ImportRejection.line_no))]


def test_reading_ahead_lands_the_same_profiles_outcomes_and_rejections(db, session, tmp_path):
    for name in ("alone", "ahead"):
        create_source(session, SYSTEM, name=name, kind="crm", default_country="GB")
    session.commit()
    path = write(tmp_path / "people.csv")
    # batches of 7 rows: the reader reads, hashes and standardises the next while one is written
    alone = run_import(db, SYSTEM, "alone", path, batch_size=7, read_ahead=False)
    ahead = run_import(db, SYSTEM, "ahead", path, batch_size=7, read_ahead=True)

    assert [getattr(ahead, c) for c in COUNTS] == [getattr(alone, c) for c in COUNTS]
    assert (alone.status, alone.total, alone.rejected, alone.unchanged, alone.updated) == (
        "completed", 62, 1, 1, 1)
    one, two = (landed(session, run.source_id) for run in (alone, ahead))
    # 60 records taken, and the rejected one (line 11) kept raw as rejected
    assert one == two and len(one[0]) == 59 and len(one[1]) == 61
    assert any(v["flags"].get("email") for v in one[0])
    assert any(v["flags"].get("country") for v in one[0])
    assert rejections(session, alone) == rejections(session, ahead)
    assert [r[0] for r in rejections(session, alone)] == [11]
    assert "not-an-email" in rejections(session, ahead)[0][3]  # the raw row, as read

    # the same file again changes nothing, and is recognised as a replay
    session.commit()  # a read on a SQLite write session holds the lock the import needs
    again = run_import(db, SYSTEM, "ahead", write(tmp_path / "copy.csv"), batch_size=7,
                       read_ahead=True)
    assert (again.total, again.unchanged, again.rejected) == (62, 61, 1)
    assert landed(session, ahead.source_id) == two


def test_reading_ahead_lands_the_same_interactions(db, session, tmp_path):
    """Rows other than profiles cross the pipe with their mapped fields."""
    for name in ("alone", "ahead"):
        create_source(session, SYSTEM, name=name, kind="crm", default_country="GB")
    session.commit()
    header = ["Event ID", "Customer ID", "Channel", "Occurred At", "Subject"]
    body = [[f"e{i}", f"c{i % 5}", "email", f"2026-03-{i % 28 + 1:02d}T10:00:00Z",
             f"Opened newsletter {i}"] for i in range(1, 31)]
    body[3][3] = "not a date"
    path = write(tmp_path / "events.csv", body, header)
    mapping = imports.parse_mapping({
        "kind": "interaction", "external_id": "Event ID", "subject": "Customer ID",
        "columns": {"Channel": "interaction.channel", "Occurred At": "interaction.occurred_at",
                    "Subject": "interaction.subject"}})
    runs = [run_import(db, SYSTEM, name, path, mapping, batch_size=4, read_ahead=ahead)
            for name, ahead in (("alone", False), ("ahead", True))]
    assert [getattr(runs[1], c) for c in COUNTS] == [getattr(runs[0], c) for c in COUNTS]
    assert runs[0].total == 30 and runs[0].accepted + runs[0].rejected == 30
    one, two = (landed(session, run.source_id)[1] for run in runs)
    assert one == two and len(one) == runs[0].accepted + runs[0].rejected  # rejected kept
    assert all(fields and fields.get("interaction.channel") == "email"
               for *_, fields, status in one if status != "rejected")
    assert [status for *_, status in one].count("rejected") == runs[0].rejected == 1
    assert rejections(session, runs[0]) == rejections(session, runs[1])
    assert session.scalar(select(func.count()).select_from(Interaction)) == 0  # nobody known


def test_a_reader_that_dies_fails_the_run_and_resuming_completes_it(db, session, tmp_path,
                                                                   monkeypatch):
    """The reading process is killed after the first batch is committed: the run fails with a
    clear error at a batch boundary, and running it again lands the rest, each row once."""
    create_source(session, SYSTEM, name="crm", kind="crm", default_country="GB")
    session.commit()
    body = [[str(i), f"Person{i}", f"Family{i}", f"person{i}@example.com", "", "", "London",
             "GB"] for i in range(1, 3001)]
    path = write(tmp_path / "people.csv", body)
    killed: list[int] = []

    def kill_the_reader(run: ImportRun) -> None:
        if not killed:
            [reader] = [p for p in multiprocessing.active_children()
                        if p.name == "accord-import-reader"]
            os.kill(reader.pid, signal.SIGKILL)
            reader.join(10)
            killed.append(run.checkpoint_line)

    # batches of 500 rows fill the pipe: the reader is still sending when it is killed
    with pytest.raises(ReaderFailed, match="reading process ended"):
        run_import(db, SYSTEM, "crm", path, batch_size=500, read_ahead=True,
                   progress=kill_the_reader)
    run = session.scalar(select(ImportRun))
    session.commit()
    assert run.status == "failed" and "reading process ended" in run.error
    assert killed[0] == 501 and run.checkpoint_line >= killed[0]
    assert run.checkpoint_line < 3001 and (run.checkpoint_line - 1) % 500 == 0
    assert session.scalar(select(func.count()).select_from(SourceRecord)) == (
        run.checkpoint_line - 1)
    session.commit()

    done = run_import(db, SYSTEM, "crm", path, batch_size=500, read_ahead=True)
    assert (done.id, done.status, done.total, done.accepted) == (run.id, "completed", 3000, 3000)
    assert session.scalar(select(func.count()).select_from(SourceRecord)) == 3000
    assert session.scalar(select(func.count(func.distinct(SourceProfile.external_id)))) == 3000
    assert not [p for p in multiprocessing.active_children()
                if p.name == "accord-import-reader"]


def test_large_files_are_read_ahead_by_default(tmp_path, monkeypatch):
    small = write(tmp_path / "small.csv")
    assert not imports._read_ahead_by_default(small)
    monkeypatch.setattr(imports, "READ_AHEAD_MIN_BYTES", small.stat().st_size)
    monkeypatch.setattr(imports.os, "cpu_count", lambda: 2)
    assert imports._read_ahead_by_default(small)
    monkeypatch.setattr(imports.os, "cpu_count", lambda: 1)
    assert not imports._read_ahead_by_default(small)


def test_prepared_profiles_cross_processes_whole() -> None:
    import pickle

    [ok, refused] = prepare_profiles(
        [{"first_name": "anna", "email": "Anna@Example.com"}, {"city": "Leeds"}], "GB")
    again = pickle.loads(pickle.dumps(refused))
    assert isinstance(again, Rejected) and isinstance(refused, Rejected)
    assert (again.reason, again.field) == (refused.reason, refused.field)
    row, flags = ok
    assert (row["first_name"], row["email"], row["country"], flags) == (
        "Anna", "anna@example.com", "GB", {})


@pytest.mark.parametrize(("option", "wanted"), [("--read-ahead", True),
                                                ("--no-read-ahead", False), (None, None)])
def test_accord_import_read_ahead_option(db, session, tmp_path, monkeypatch, option, wanted):
    """`accord import --read-ahead` hands the choice down; the file lands as without it."""
    from typer.testing import CliRunner

    from accord.cli import app

    asked: list[bool | None] = []
    real = imports.run_import

    def spy(*args: Any, **kwargs: Any) -> Any:
        asked.append(kwargs.get("read_ahead"))
        return real(*args, **kwargs)

    monkeypatch.setattr(imports, "run_import", spy)
    path = write(tmp_path / "people.csv")
    result = CliRunner().invoke(app, ["import", str(path), "--source", "cli-ahead",
                                      "--batch-size", "7", *([option] if option else [])])
    assert result.exit_code == 0, result.output
    assert asked == [wanted]
    assert "62 rows" in result.output and "1 rejected" in result.output
    source_id = session.scalar(select(SourceRecord.source_id).limit(1))
    assert len(landed(session, source_id)[0]) == 59

"""An import standardised by a pool of processes lands exactly what the in-process one lands."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

from sqlalchemy import select

from accord.access.policy import SYSTEM
from accord.integration.imports import run_import
from accord.integration.ingest import Rejected, prepare_profiles
from accord.integration.sources import create_source
from accord.models import ImportRejection, SourceProfile, SourceRecord

HEADER = ["Record ID", "First Name", "Last Name", "Email", "Phone Number", "Birth Date", "City",
          "Country/Region"]


def rows() -> list[list[str]]:
    out = []
    for i in range(1, 61):
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


def write(path: Path) -> Path:
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(HEADER)
        writer.writerows(rows())
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
               SourceRecord.status)
        .where(SourceRecord.source_id == source_id).order_by(SourceRecord.line_no)).all()
    return values, [tuple(r) for r in records]


def test_a_pool_of_processes_lands_the_same_profiles_outcomes_and_rejections(db, session,
                                                                             tmp_path):
    for name in ("alone", "pooled"):
        create_source(session, SYSTEM, name=name, kind="crm", default_country="GB")
    session.commit()
    path = write(tmp_path / "people.csv")
    # batches of 7 rows: the pool standardises the next batch while one is written
    alone = run_import(db, SYSTEM, "alone", path, batch_size=7)
    pooled = run_import(db, SYSTEM, "pooled", path, batch_size=7, workers=2)

    counts = ("status", "total", "accepted", "updated", "unchanged", "rejected",
              "checkpoint_line")
    assert [getattr(pooled, c) for c in counts] == [getattr(alone, c) for c in counts]
    assert (alone.status, alone.total, alone.rejected, alone.unchanged, alone.updated) == (
        "completed", 62, 1, 1, 1)
    sources = {run.id: run.source_id for run in (alone, pooled)}
    one, two = (landed(session, sources[run.id]) for run in (alone, pooled))
    assert one == two and len(one[0]) == 59
    assert any(v["flags"].get("email") for v in one[0])
    assert any(v["flags"].get("country") for v in one[0])
    rejections = [
        [(r.line_no, r.field, r.reason) for r in session.scalars(
            select(ImportRejection).where(ImportRejection.import_id == run.id)
            .order_by(ImportRejection.line_no))]
        for run in (alone, pooled)]
    assert rejections[0] == rejections[1] and [r[0] for r in rejections[0]] == [11]


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


def test_accord_import_workers_option_uses_the_pool(db, session, tmp_path, monkeypatch):
    """`accord import --workers 2` hands the pool size down; the file lands as without it."""
    from typer.testing import CliRunner

    from accord.cli import app
    from accord.integration import imports

    asked: list[int] = []
    real = imports.run_import

    def spy(*args: Any, **kwargs: Any) -> Any:
        asked.append(kwargs.get("workers", 0))
        return real(*args, **kwargs)

    monkeypatch.setattr(imports, "run_import", spy)
    path = write(tmp_path / "people.csv")
    result = CliRunner().invoke(app, ["import", str(path), "--source", "cli-pool",
                                      "--batch-size", "7", "--workers", "2"])
    assert result.exit_code == 0, result.output
    assert asked == [2]
    assert "62 rows" in result.output and "1 rejected" in result.output
    source_id = session.scalar(select(SourceRecord.source_id).limit(1))
    assert len(landed(session, source_id)[0]) == 59

"""What an import did not take, and importing again with a corrected mapping.

Flagged values (left out of a profile, kept in the raw record) are counted on the run and listed
in its report with the value as written; a re-import with another mapping, country or date order
standardises the raw records already kept again (`updated` where a value changes), while a
re-import with the same one changes nothing. `accord import` names new sources as the API does
and creates none for a file it refuses."""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select, update

from accord.access.policy import SYSTEM
from accord.integration.imports import cli_import, run_import, write_report
from accord.integration.mapping import load_mapping
from accord.integration.sources import create_source
from accord.models import ImportFlag, ImportRun, Job, Source, SourceProfile, SourceRecord

HEADER = ["id", "first", "last", "mail", "tel", "born", "land"]
MAPPING = ("external_id: id\n"
           "columns: {first: first_name, last: last_name, mail: email, tel: phone, "
           "born: date_of_birth, land: country}\n")
ROWS = [
    ["1", "Ada", "Byron", "ada@example.com", "020 7946 0001", "1985-04-03", "GB"],
    ["2", "Bob", "Stone", "bob@", "020 7946 0002", "", "GB"],  # line 3: e-mail
    ["3", "Cy", "Ward", "cy@example.com", "12", "", ""],  # line 4: phone
    ["4", "Di", "Fox", "di@example.com", "", "31/02/1985", ""],  # line 5: date of birth
    ["5", "Ed", "Hill", "ed@example.com", "", "", "Atlantis"],  # line 6: country
    ["6", "Flo", "May", "=HYPERLINK(\"x\")", "", "2990-01-01", ""],  # line 7: two values
]


def write_csv(path: Path, rows: list[list[str]], header: list[str] = HEADER) -> Path:
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def count(session: Any, model: Any, *where: Any) -> int:
    n = session.scalar(select(func.count()).select_from(model).where(*where))
    session.commit()  # a read on a SQLite write session holds the lock the import needs
    return n


def profile(session: Any, external_id: str) -> SourceProfile:
    found = session.scalar(select(SourceProfile).where(SourceProfile.external_id == external_id)
                           .execution_options(populate_existing=True))
    session.commit()
    return found


@pytest.fixture
def crm(session: Any) -> Source:
    source = create_source(session, SYSTEM, name="crm", kind="crm", default_country="GB")
    session.commit()
    return source


class Echo:
    def __init__(self) -> None:
        self.out: list[str] = []
        self.err: list[str] = []

    def __call__(self, message: str = "", err: bool = False) -> None:
        (self.err if err else self.out).append(message)


# --- flagged values ---------------------------------------------------------------------------


@pytest.mark.parametrize("read_ahead", [False, True], ids=["in-process", "read-ahead"])
def test_flagged_values_are_counted_and_kept_with_the_value_as_written(db, session, crm, tmp_path,
                                                                       read_ahead):
    path = write_csv(tmp_path / "people.csv", ROWS)
    run = run_import(db, SYSTEM, "crm", path, load_mapping(MAPPING), batch_size=4,
                     read_ahead=read_ahead)
    assert (run.total, run.accepted, run.rejected, run.flagged) == (6, 6, 0, 5)
    flags = session.scalars(select(ImportFlag).where(ImportFlag.import_id == run.id)
                            .order_by(ImportFlag.line_no, ImportFlag.field)).all()
    assert [(f.line_no, f.field, f.value) for f in flags] == [
        (3, "email", "bob@"),
        (4, "phone", "12"),
        (5, "date_of_birth", "31/02/1985"),  # as written, not as the reason reads it
        (6, "country", "Atlantis"),
        (7, "date_of_birth", "2990-01-01"),
        (7, "email", "=HYPERLINK(\"x\")"),
    ]
    assert "not a calendar date" in flags[2].reason
    assert "Atlantis" in flags[3].reason and "future" in flags[4].reason
    # the profile holds the same reasons
    assert profile(session, "3").flags == {"phone": flags[1].reason}


def test_the_report_csv_lists_flagged_values_after_the_rejections(db, session, crm, tmp_path):
    rows = [*ROWS, ["7", "", "", "", "", "", ""]]  # line 8: rejected
    run = run_import(db, SYSTEM, "crm", write_csv(tmp_path / "p.csv", rows),
                     load_mapping(MAPPING))
    out = io.StringIO()
    write_report(session, run, out)
    table = list(csv.reader(io.StringIO(out.getvalue())))
    assert table[0][8:10] == ["rejected", "flagged"]
    assert table[1][4:10] == ["7", "6", "0", "0", "1", "5"]
    assert table[3] == ["line_no", "field", "reason", "row"]
    assert table[4][0] == "8"
    assert table[5] == []
    assert table[6] == ["line_no", "field", "reason", "value"]
    flagged = table[7:]
    assert [(r[0], r[1], r[3]) for r in flagged[:3]] == [
        ("3", "email", "bob@"), ("4", "phone", "12"), ("5", "date_of_birth", "31/02/1985")]
    assert flagged[-1][:2] == ["7", "email"]
    assert flagged[-1][3] == "'=HYPERLINK(\"x\")"  # no formula runs in a spreadsheet
    assert len(flagged) == 6


def test_a_row_in_many_batches_of_flags_reads_back_in_order(db, session, crm, tmp_path):
    from accord.integration.imports import flag_rows

    rows = [[str(i), "Pat", "Fox", f"p{i}@", "", "", ""] for i in range(1, 26)]
    run = run_import(db, SYSTEM, "crm", write_csv(tmp_path / "p.csv", rows),
                     load_mapping(MAPPING), batch_size=7)
    assert run.flagged == 25
    lines = [f.line_no for f in flag_rows(session, run.id, chunk=4)]
    assert lines == list(range(2, 27))
    assert [f.line_no for f in flag_rows(session, run.id, chunk=4, limit=5)] == [2, 3, 4, 5, 6]


def test_the_cli_summary_and_report_list_the_flagged_values(db, session, crm, tmp_path):
    path = write_csv(tmp_path / "people.csv", ROWS)
    mapping = tmp_path / "map.yaml"
    mapping.write_text(MAPPING, encoding="utf-8")
    echo = Echo()
    assert cli_import(path, "crm", mapping, None, 5000, None, echo) == 0
    text = "\n".join(echo.out)
    assert "6 accepted" in text and "0 rejected; 5 with flagged values" in text
    assert "line 3: email:" in text and "'bob@'" in text
    assert "line 5: date_of_birth:" in text and "'31/02/1985'" in text

    report = tmp_path / "report.csv"
    changed = write_csv(tmp_path / "v2.csv", [*ROWS, ["8", "Gil", "Lee", "gil@", "", "", ""]])
    assert cli_import(changed, "crm", mapping, None, 5000, report, Echo()) == 0
    table = list(csv.reader(report.open(encoding="utf-8")))
    assert table[1][4:10] == ["7", "1", "0", "6", "0", "1"]  # only the new row was taken
    assert table[-3:-1] == [[], ["line_no", "field", "reason", "value"]]
    assert table[-1][:2] == ["8", "email"] and table[-1][3] == "gil@"


# --- re-importing with other settings ---------------------------------------------------------


NO_PHONE = ("external_id: id\ncolumns: {first: first_name, last: last_name, mail: email, "
            "tel: null, born: null, land: null}\n")  # the rest ignored on purpose


def test_reimporting_with_a_corrected_mapping_restandardises_the_kept_records(db, session, crm,
                                                                               tmp_path):
    path = write_csv(tmp_path / "people.csv", ROWS[:3])
    first = run_import(db, SYSTEM, "crm", path, load_mapping(NO_PHONE))
    assert (first.accepted, first.flagged) == (3, 1)
    assert profile(session, "1").phone is None
    records = count(session, SourceRecord)
    record_id = profile(session, "1").record_id

    same = run_import(db, SYSTEM, "crm", path, load_mapping(NO_PHONE))
    assert (same.unchanged, same.updated, same.flagged) == (3, 0, 0)

    fixed = run_import(db, SYSTEM, "crm", path, load_mapping(MAPPING))
    assert (fixed.status, fixed.total, fixed.updated, fixed.unchanged, fixed.accepted) == (
        "completed", 3, 3, 0, 0)
    assert count(session, SourceRecord) == records  # nothing new arrived: no raw row is added
    ada = profile(session, "1")
    assert (ada.phone, ada.date_of_birth.isoformat(), ada.country) == (
        "+442079460001", "1985-04-03", "GB")
    assert (ada.version, ada.record_id) == (2, record_id)  # made from the same raw record
    assert fixed.flagged == 2  # Bob's e-mail still, and now Cy's phone, which is mapped
    assert profile(session, "2").flags == {"email": profile(session, "2").flags["email"]}
    assert profile(session, "2").phone == "+442079460002"
    # the changed profiles are resolved again
    jobs = session.scalars(select(Job).where(Job.kind == "integration.match")).all()
    session.commit()
    assert any(set(j.payload["profile_ids"]) == {ada.id, profile(session, "2").id,
                                                 profile(session, "3").id} for j in jobs)

    again = run_import(db, SYSTEM, "crm", path, load_mapping(MAPPING))
    assert (again.unchanged, again.updated) == (3, 0)  # idempotent under the new mapping
    assert profile(session, "1").version == 2


def test_a_new_country_or_date_order_restandardises_only_the_rows_it_changes(db, session, crm,
                                                                              tmp_path):
    header = ["id", "first", "last", "tel", "born"]
    rows = [["k1", "Jonas", "Weber", "030 1234567", "01/02/1990"],
            ["k2", "Eva", "Klein", "", "1990-11-12"]]
    path = write_csv(tmp_path / "de.csv", rows, header)
    base = "external_id: id\ncolumns: {first: first_name, last: last_name, tel: phone, " \
           "born: date_of_birth}\n"
    first = run_import(db, SYSTEM, "crm", path, load_mapping(base))  # the source says GB
    assert (first.accepted, first.flagged) == (2, 1)
    jonas = profile(session, "k1")
    assert jonas.phone is None and "phone" in jonas.flags
    assert jonas.date_of_birth.isoformat() == "1990-02-01"  # read the British way

    german = run_import(db, SYSTEM, "crm", path, load_mapping(base + "default_country: DE\n"))
    assert (german.updated, german.unchanged, german.flagged) == (2, 0, 0)
    jonas = profile(session, "k1")
    assert (jonas.phone, jonas.country, jonas.flags) == ("+49301234567", "DE", {})
    assert profile(session, "k2").country == "DE"  # the file's country is the records' too

    american = run_import(db, SYSTEM, "crm", path,
                          load_mapping(base + "default_country: DE\ndate_order: MDY\n"))
    assert (american.updated, american.unchanged) == (1, 1)  # Eva's ISO date reads the same
    assert profile(session, "k1").date_of_birth.isoformat() == "1990-01-02"
    assert profile(session, "k2").version == 2


def test_an_older_version_in_the_file_does_not_overwrite_the_profile(db, session, crm, tmp_path):
    old = write_csv(tmp_path / "old.csv", ROWS[:1])
    run_import(db, SYSTEM, "crm", old, load_mapping(NO_PHONE))
    renamed = [list(ROWS[0])]
    renamed[0][2] = "King"
    run_import(db, SYSTEM, "crm", write_csv(tmp_path / "new.csv", renamed),
               load_mapping(NO_PHONE))
    assert profile(session, "1").last_name == "King"

    replay = run_import(db, SYSTEM, "crm", old, load_mapping(MAPPING))
    assert (replay.unchanged, replay.updated) == (1, 0)
    ada = profile(session, "1")
    assert (ada.last_name, ada.phone, ada.version) == ("King", None, 2)


def test_a_new_version_in_the_same_file_wins_over_standardising_the_old_one(db, session, crm,
                                                                           tmp_path):
    run_import(db, SYSTEM, "crm", write_csv(tmp_path / "v1.csv", ROWS[:1]),
               load_mapping(NO_PHONE))
    renamed = list(ROWS[0])
    renamed[2] = "King"
    both = write_csv(tmp_path / "both.csv", [renamed, ROWS[0]])  # the kept one comes last
    run = run_import(db, SYSTEM, "crm", both, load_mapping(MAPPING))
    assert (run.updated, run.unchanged) == (1, 1)
    ada = profile(session, "1")
    assert (ada.last_name, ada.phone) == ("King", "+442079460001")


def test_profiles_from_before_fingerprints_are_not_reported_updated(db, session, crm, tmp_path):
    path = write_csv(tmp_path / "people.csv", ROWS[:3])
    run_import(db, SYSTEM, "crm", path, load_mapping(MAPPING))
    session.execute(update(SourceProfile).values(standardised_with=None))
    session.commit()
    again = run_import(db, SYSTEM, "crm", path, load_mapping(MAPPING))
    assert (again.unchanged, again.updated) == (3, 0)
    assert count(session, SourceProfile, SourceProfile.standardised_with.is_(None)) == 0
    assert profile(session, "1").version == 1


# --- new sources from the command line --------------------------------------------------------


def test_the_cli_refuses_a_source_name_the_api_would_refuse(db, session, tmp_path):
    path = write_csv(tmp_path / "people.csv", ROWS[:1])
    echo = Echo()
    assert cli_import(path, "HubSpot Export/2024", None, None, 5000, None, echo) == 2
    assert "cannot name a new source" in "\n".join(echo.err)
    assert count(session, Source) == 0
    assert count(session, ImportRun) == 0


def test_the_cli_creates_no_source_for_a_file_it_refuses(db, session, tmp_path):
    empty = tmp_path / "empty.csv"
    empty.write_text("", encoding="utf-8")
    meaningless = write_csv(tmp_path / "x.csv", [["1", "2"]], header=["foo", "bar"])
    for path in (empty, meaningless):
        echo = Echo()
        assert cli_import(path, "hubspot-2024", None, None, 5000, None, echo) == 2
        assert echo.err and echo.err[0].startswith("error:")
    assert count(session, Source) == 0

    good = write_csv(tmp_path / "people.csv", ROWS[:2])
    echo = Echo()
    assert cli_import(good, "hubspot-2024", None, None, 5000, None, echo) == 0
    assert "Created source 'hubspot-2024'" in echo.out[0]
    assert count(session, Source, Source.name == "hubspot-2024") == 1
    # an existing source keeps its name, whatever the rules for new ones
    session.execute(update(Source).values(name="Legacy CRM"))
    session.commit()
    assert cli_import(good, "Legacy CRM", None, None, 5000, None, Echo()) == 0

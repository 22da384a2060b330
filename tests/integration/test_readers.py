"""Streaming readers: delimiters, encodings, quoted newlines and line numbers, JSONL, Excel."""

from __future__ import annotations

import json
from datetime import date, datetime
from pathlib import Path

import pytest

from accord.integration.readers import (
    Unreadable,
    UnsupportedFile,
    cell_text,
    detect_encoding,
    inspect,
    read_rows,
)


def rows_of(path: Path) -> list[tuple[int, object]]:
    return list(read_rows(path, inspect(path)))


@pytest.mark.parametrize("delimiter", [",", ";", "\t", "|"])
def test_the_delimiter_is_detected(tmp_path: Path, delimiter: str) -> None:
    lines = [["id", "first_name", "last_name", "city"], ["1", "Ada", "Lovelace", "London"],
             ["2", "Grace", "Hopper", "New York, NY"], ["3", "Alan", "Turing", "Wilmslow"]]
    text = "\n".join(delimiter.join(f'"{v}"' if "," in v else v for v in line)
                     for line in lines) + "\n"
    path = tmp_path / "people.txt"
    path.write_text(text, encoding="utf-8")
    info = inspect(path)
    assert (info.format, info.delimiter) == ("csv", delimiter)
    assert info.columns == ["id", "first_name", "last_name", "city"]
    got = rows_of(path)
    assert [n for n, _ in got] == [2, 3, 4]
    assert got[1][1] == {"id": "2", "first_name": "Grace", "last_name": "Hopper",
                         "city": "New York, NY"}


def test_a_comma_in_values_does_not_fool_semicolon_detection(tmp_path: Path) -> None:
    path = tmp_path / "eu.csv"
    path.write_text("Name;Betrag;Ort\nMüller, Hans;1,50;Köln\nSchmidt, Eva;2,75;Bonn\n",
                    encoding="utf-8")
    info = inspect(path)
    assert info.delimiter == ";"
    assert rows_of(path)[0][1] == {"Name": "Müller, Hans", "Betrag": "1,50", "Ort": "Köln"}


@pytest.mark.parametrize(("encoding", "expected"), [
    ("cp1252", "cp1252"),
    ("utf-8-sig", "utf-8-sig"),
    ("utf-16", "utf-16"),
    ("utf-8", "utf-8"),
])
def test_encodings_are_detected_and_accents_survive(tmp_path: Path, encoding: str,
                                                    expected: str) -> None:
    text = ("id,first_name,last_name,city\r\n1,Zoë,Müller,Köln\r\n2,José,García,Málaga\r\n"
            "3,François,Lefèvre,Besançon\r\n4,Chloé,Dvořák,Brno\r\n")
    if encoding == "cp1252":
        text = text.replace("Dvořák", "Dvorak")  # ř is not in cp1252
    path = tmp_path / "people.csv"
    path.write_bytes(text.encode(encoding))
    info = inspect(path)
    assert info.encoding == expected
    assert info.columns == ["id", "first_name", "last_name", "city"]  # no BOM in the first name
    got = [r for _, r in rows_of(path)]
    assert [r["first_name"] for r in got] == ["Zoë", "José", "François", "Chloé"]  # type: ignore[index]
    assert got[2]["city"] == "Besançon"  # type: ignore[index]


def test_utf16_without_a_bom_is_recognised() -> None:
    assert detect_encoding("id,name\n1,Åsa\n".encode("utf-16-le")) == "utf-16-le"
    assert detect_encoding("id,name\n1,Åsa\n".encode("utf-16-be")) == "utf-16-be"


def test_a_stray_windows_byte_in_a_utf8_file_does_not_stop_the_file(tmp_path: Path) -> None:
    good = "id,name\n" + "".join(f"{i},Zoë {i}\n" for i in range(1, 3000))
    path = tmp_path / "mixed.csv"
    path.write_bytes(good.encode("utf-8") + "3000,Café\n".encode("cp1252")
                     + "3001,Zoë\n".encode())
    info = inspect(path)
    assert info.encoding == "utf-8"
    got = rows_of(path)
    assert len(got) == 3001
    assert got[-2:] == [(3001, {"id": "3000", "name": "Café"}),
                        (3002, {"id": "3001", "name": "Zoë"})]


def test_quoted_newlines_keep_later_line_numbers_right(tmp_path: Path) -> None:
    path = tmp_path / "notes.csv"
    path.write_text(
        'id,name,note\n'
        '1,Ada,"first line\nsecond line\nthird line"\n'
        '2,Grace,"say ""hi"""\n'
        '\n'
        '3,Alan,"a\r\nb"\n'
        '4,Edsger,plain\n', encoding="utf-8", newline="")
    got = rows_of(path)
    assert [n for n, _ in got] == [2, 5, 7, 9]
    assert got[0][1]["note"] == "first line\nsecond line\nthird line"  # type: ignore[index]
    assert got[1][1]["note"] == 'say "hi"'  # type: ignore[index]
    assert got[2][1]["note"] == "a\r\nb"  # type: ignore[index]
    assert got[3][1] == {"id": "4", "name": "Edsger", "note": "plain"}


def test_rows_of_the_wrong_width_are_refused_whole_and_awkward_headers_kept(
        tmp_path: Path) -> None:
    path = tmp_path / "ragged.csv"
    path.write_text("id,Email,,Email\n"
                    "1,a@x.org,b,c@x.org,extra\n"  # a value too many: shifted
                    "2,d@x.org\n"  # cut off
                    '3,e@x.org,"f, g",h@x.org,,\n'  # a trailing delimiter: empty values only
                    "4,i@x.org,j,k@x.org\n", encoding="utf-8")
    info = inspect(path)
    assert info.columns == ["id", "Email", "column_3", "Email_2"]
    got = rows_of(path)
    assert [n for n, _ in got] == [2, 3, 4, 5]
    assert got[0][1] == Unreadable("the record has 5 values but the header has 4 columns",
                                   "1,a@x.org,b,c@x.org,extra")
    assert got[1][1] == Unreadable("the record has 2 values but the header has 4 columns",
                                   "2,d@x.org")
    assert got[2][1] == {"id": "3", "Email": "e@x.org", "column_3": "f, g", "Email_2": "h@x.org"}
    assert got[3][1] == {"id": "4", "Email": "i@x.org", "column_3": "j", "Email_2": "k@x.org"}


@pytest.mark.parametrize("newline", ["\n", "\r\n", "\r"])
def test_excels_sep_line_names_the_delimiter_and_is_not_the_header(tmp_path: Path,
                                                                   newline: str) -> None:
    path = tmp_path / "excel.csv"
    path.write_text(newline.join(["sep=;", "id;name;city", "1;Ada;London, UK", "2;Bo;Paris"])
                    + newline, encoding="cp1252", newline="")
    info = inspect(path)
    assert (info.delimiter, info.columns) == (";", ["id", "name", "city"])
    got = rows_of(path)
    assert [n for n, _ in got] == [3, 4]  # physical lines: the hint is line 1, the header 2
    assert got[0][1] == {"id": "1", "name": "Ada", "city": "London, UK"}


def test_nul_characters_are_replaced_not_fatal(tmp_path: Path) -> None:
    path = tmp_path / "nul.csv"
    path.write_bytes(b"id,name\n1,Ad\x00a\n2,Bo\n")
    got = rows_of(path)
    assert got[0][1]["name"] == "Ad\ufffda"  # type: ignore[index]
    assert len(got) == 2


def test_json_lines_with_bad_lines(tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    lines = [json.dumps({"id": 1, "name": "Ada", "address": {"city": "London"}}), "",
             "{not json", json.dumps([1, 2]), json.dumps({"id": 2, "name": "Grace"})]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    info = inspect(path)
    assert info.format == "jsonl"
    assert info.columns == ["id", "name", "address.city"]
    got = rows_of(path)
    assert [n for n, _ in got] == [1, 3, 4, 5]
    assert got[0][1] == {"id": 1, "name": "Ada", "address": {"city": "London"}}
    assert isinstance(got[1][1], Unreadable) and "invalid JSON" in got[1][1].reason
    assert isinstance(got[2][1], Unreadable) and "not a JSON object" in got[2][1].reason
    assert got[3][1] == {"id": 2, "name": "Grace"}


def test_excel_cells_become_the_text_a_person_sees(tmp_path: Path) -> None:
    openpyxl = pytest.importorskip("openpyxl")
    book = openpyxl.Workbook()
    sheet = book.active
    sheet.title = "Contacts"
    sheet.append(["Record ID", "First Name", "Phone Number", "Birthdate", "Score", "VIP",
                  "Last seen"])
    sheet.append([1001, "Ada", 4915112345678, date(1815, 12, 10), 4.5, True,
                  datetime(2024, 3, 1, 9, 30)])
    sheet.append([None, None, None, None, None, None, None])  # an empty row is skipped
    sheet.append([1002.0, "Grace", "+1 212 555 0100", datetime(1906, 12, 9), 3, False, None])
    path = tmp_path / "contacts.xlsx"
    book.save(path)
    info = inspect(path)
    assert (info.format, info.sheet) == ("xlsx", "Contacts")
    assert info.columns[:3] == ["Record ID", "First Name", "Phone Number"]
    got = rows_of(path)
    assert [n for n, _ in got] == [2, 4]
    assert got[0][1] == {"Record ID": "1001", "First Name": "Ada",
                         "Phone Number": "4915112345678", "Birthdate": "1815-12-10",
                         "Score": "4.5", "VIP": "true", "Last seen": "2024-03-01T09:30:00"}
    assert got[1][1]["Record ID"] == "1002"  # type: ignore[index]
    assert got[1][1]["Birthdate"] == "1906-12-09"  # type: ignore[index]
    assert got[1][1]["Last seen"] == ""  # type: ignore[index]


def test_cell_text() -> None:
    assert cell_text(None) == ""
    assert cell_text(12.0) == "12"
    assert cell_text(0.1) == "0.1"
    assert cell_text(date(2020, 2, 29)) == "2020-02-29"


def test_unsupported_files_are_refused_clearly(tmp_path: Path) -> None:
    fake = tmp_path / "book.xlsx"
    fake.write_text("id,name\n1,a\n")
    with pytest.raises(UnsupportedFile, match="not one"):
        inspect(fake)
    array = tmp_path / "data.json"
    array.write_text('[{"id": 1}]')
    with pytest.raises(UnsupportedFile, match="JSON Lines"):
        inspect(array)


def test_rows_stream_without_reading_the_whole_file(tmp_path: Path) -> None:
    path = tmp_path / "big.csv"
    with path.open("w", encoding="utf-8") as fh:
        fh.write("id,name\n")
        for i in range(50_000):
            fh.write(f"{i},name {i}\n")
    rows = read_rows(path, inspect(path))
    assert next(rows) == (2, {"id": "0", "name": "name 0"})
    rows.close()  # a generator: closing it closes the file

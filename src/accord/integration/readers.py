"""Streaming readers for import files: CSV (any delimiter and encoding), JSON Lines and Excel.

Every reader yields `(line_no, row)` one record at a time, so a file of any size is read in
flat memory. `line_no` is what a person finds in the file: the physical line where a CSV record
starts (the header is line 1; a quoted field spanning lines does not shift later numbers), the
line of a JSON Lines record, the row number of an Excel sheet. A record that cannot be read is
yielded as `Unreadable` with the reason, never raised: one bad line must not stop the others.

Rows are kept as the source wrote them (CSV and Excel cells as strings, JSON values as parsed),
because they become the raw, verbatim payload of a source record.
"""

from __future__ import annotations

import codecs
import contextlib
import csv
import io
import json
import math
import re
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, time
from decimal import Decimal
from pathlib import Path
from typing import Any

import charset_normalizer

FORMATS = ("csv", "jsonl", "xlsx")
DELIMITERS = ",;\t|"
SAMPLE_BYTES = 64 * 1024
SAMPLE_ROWS = 200  # JSON Lines records read to learn the columns
FIELD_LIMIT = 1 << 20  # a single CSV field over 1 MiB is a broken quote, not data
# Excel's delimiter hint, a file's first line
_SEP_LINE = re.compile(r"sep=([,;\t|])(?:\r\n|\r|\n)")
_EXTENSIONS = {".csv": "csv", ".tsv": "csv", ".txt": "csv", ".psv": "csv", ".jsonl": "jsonl",
               ".ndjson": "jsonl", ".json": "jsonl", ".xlsx": "xlsx", ".xlsm": "xlsx"}
# Legacy encodings charset-normalizer may choose between when a file is not UTF-8/16.
_LEGACY = ["cp1252", "cp1250", "cp1251", "cp1253", "cp1254", "cp1257", "iso8859_15", "koi8_r",
           "shift_jis", "euc_jp", "gb18030", "big5", "euc_kr", "mac_roman"]
_FALLBACK_ERRORS = "accord-cp1252"


def _decode_fallback(exc: UnicodeError) -> tuple[str, int]:
    """A byte the detected encoding cannot decode is read as cp1252 (else Latin-1): files that
    mix UTF-8 with a stray Windows character lose nothing and never stop the import."""
    if not isinstance(exc, UnicodeDecodeError):
        raise exc
    chunk = exc.object[exc.start:exc.end]
    return bytes(chunk).decode("cp1252", errors="ignore") or bytes(chunk).decode("latin-1"), exc.end


codecs.register_error(_FALLBACK_ERRORS, _decode_fallback)
csv.field_size_limit(FIELD_LIMIT)


@dataclass(frozen=True, slots=True)
class Unreadable:
    """A record the reader could not take as a row; `raw` is its text, kept for the report."""

    reason: str
    raw: str = ""


Row = dict[str, Any] | Unreadable


@dataclass(slots=True)
class FileInfo:
    format: str  # csv | jsonl | xlsx
    columns: list[str] = field(default_factory=list)
    encoding: str | None = None
    delimiter: str | None = None
    sheet: str | None = None
    # Excel's `sep=;` first line: it names the delimiter and the header follows it
    sep_line: bool = False

    def describe(self) -> dict[str, Any]:
        return {"format": self.format, "encoding": self.encoding, "delimiter": self.delimiter,
                "sheet": self.sheet, "columns": list(self.columns)}


class UnsupportedFile(ValueError):
    """The file is not a CSV, JSON Lines or Excel workbook Accord can read."""


# --- detection ---------------------------------------------------------------------------------


def detect_format(path: Path, name: str | None = None) -> str:
    """By content first (an .xlsx is a zip archive, JSON Lines starts with `{`), then by name."""
    with path.open("rb") as fh:
        head = fh.read(4096)
    if head.startswith(b"PK\x03\x04"):
        if not zipfile.is_zipfile(path):
            raise UnsupportedFile("the file looks like a zip archive but is damaged")
        return "xlsx"
    if head.startswith((b"\xd0\xcf\x11\xe0",)):
        raise UnsupportedFile("old Excel .xls files are not supported: save the sheet as .xlsx "
                              "or CSV")
    encoding = detect_encoding(head)
    text = head.decode(encoding, errors=_FALLBACK_ERRORS).lstrip("\ufeff \t\r\n")
    if text.startswith("{"):
        return "jsonl"
    if text.startswith("["):
        raise UnsupportedFile("a JSON array is not supported: write one JSON object per line "
                              "(JSON Lines)")
    if _EXTENSIONS.get(Path(name or path.name).suffix.lower()) == "xlsx":
        raise UnsupportedFile("the file is named like an Excel workbook but is not one")
    return "csv"


def detect_encoding(sample: bytes) -> str:
    """The encoding of a file from its first bytes: a BOM decides, then UTF-16 without a BOM
    (every other byte zero), then UTF-8 if the sample is valid UTF-8, else the best legacy
    code page by charset-normalizer, preferring cp1252 when it reads the sample the same."""
    if sample.startswith(codecs.BOM_UTF8):
        return "utf-8-sig"
    if sample.startswith((codecs.BOM_UTF32_LE, codecs.BOM_UTF32_BE)):
        return "utf-32"
    if sample.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return "utf-16"
    head = sample[:2000]
    if len(head) >= 4:
        even, odd = head[0::2], head[1::2]
        if odd.count(0) > len(odd) * 0.4 and even.count(0) < len(even) * 0.1:
            return "utf-16-le"
        if even.count(0) > len(even) * 0.4 and odd.count(0) < len(odd) * 0.1:
            return "utf-16-be"
    text = codecs.getincrementaldecoder("utf-8")(errors="replace").decode(sample, final=False)
    bad = text.count("\ufffd")
    if not bad:
        return "utf-8"
    good = sum(1 for ch in text if ch > "\x7f") - bad
    if good >= 20 * bad:  # UTF-8 with a stray Windows byte: read as UTF-8, the byte as cp1252
        return "utf-8"
    matches = charset_normalizer.from_bytes(sample, cp_isolation=_LEGACY)
    best = matches.best()
    if best is None:
        return "cp1252"
    # Western European files are the common case: on a tie (cp1250 and cp1252 read accented
    # Latin letters equally well) Windows-1252 wins.
    for match in matches:
        if ("cp1252" in match.could_be_from_charset and match.chaos <= best.chaos + 0.01
                and match.coherence >= best.coherence - 0.01):
            return "cp1252"
    return best.encoding


def _text_sample(path: Path, encoding: str) -> str:
    with path.open("rb") as fh:
        raw = fh.read(SAMPLE_BYTES)
    text = codecs.getincrementaldecoder(encoding)(errors=_FALLBACK_ERRORS).decode(raw)
    if len(raw) == SAMPLE_BYTES:  # drop the partial last line
        cut = max(text.rfind("\n"), text.rfind("\r"))
        text = text[:cut + 1] if cut > 0 else text
    return text.lstrip("\ufeff")


def detect_delimiter(sample: str) -> str:
    """csv.Sniffer on the sample, checked: the delimiter must split the header into more than one
    column and give most records the header's width. Otherwise the candidate that does so best
    wins; a file with one column reads with a comma."""
    candidates: list[str] = []
    with contextlib.suppress(csv.Error):
        candidates.append(csv.Sniffer().sniff(sample, delimiters=DELIMITERS).delimiter)
    candidates += [d for d in DELIMITERS if d not in candidates]
    best, best_score = ",", 0.0
    for delimiter in candidates:
        score = _delimiter_score(sample, delimiter)
        if score > best_score + 1e-9:
            best, best_score = delimiter, score
        if candidates[0] == delimiter and score >= 0.9:
            return delimiter  # the sniffer's choice holds up
    return best


def _delimiter_score(sample: str, delimiter: str) -> float:
    try:
        rows = list(csv.reader(io.StringIO(sample, newline=""), delimiter=delimiter))
    except csv.Error:
        return 0.0
    rows = [r for r in rows if r]
    if not rows or len(rows[0]) < 2:
        return 0.0
    width = len(rows[0])
    body = rows[1:-1] or rows[1:] or rows
    consistent = sum(1 for r in body if len(r) == width) / len(body)
    return consistent + min(width, 50) / 1000  # ties go to the delimiter giving more columns


def inspect(path: Path | str, name: str | None = None) -> FileInfo:
    """Format, encoding, delimiter and columns of a file, from its first bytes and records."""
    path = Path(path)
    fmt = detect_format(path, name)
    if fmt == "xlsx":
        return _inspect_xlsx(path)
    with path.open("rb") as fh:
        raw = fh.read(SAMPLE_BYTES)
    encoding = detect_encoding(raw)
    if fmt == "jsonl":
        columns: dict[str, None] = {}
        for n, (_, row) in enumerate(_jsonl_rows(path, encoding)):
            if n >= SAMPLE_ROWS:
                break
            if isinstance(row, dict):
                columns.update(dict.fromkeys(flatten_keys(row)))
        return FileInfo("jsonl", list(columns), encoding)
    sample = _text_sample(path, encoding)
    declared = _SEP_LINE.match(sample)
    delimiter = declared.group(1) if declared else detect_delimiter(sample)
    with path.open(newline="", encoding=encoding, errors=_FALLBACK_ERRORS) as fh:
        reader = csv.reader(_clean_lines(fh), delimiter=delimiter)
        if declared:
            next(reader, None)  # the sep= line
        header = next(reader, [])
    return FileInfo("csv", _header_names(header), encoding, delimiter, sep_line=bool(declared))


def flatten_keys(row: dict[str, Any], prefix: str = "") -> Iterator[str]:
    """`{"address": {"city": ...}}` offers the column `address.city` to a mapping."""
    for key, value in row.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict) and value:
            yield from flatten_keys(value, name + ".")
        else:
            yield name


def _header_names(header: list[Any]) -> list[str]:
    """Column names made unique and non-empty: a blank header is `column_<n>`, a repeated one
    gets `_2`, `_3` ... so no value is overwritten in the row."""
    names: list[str] = []
    seen: set[str] = set()
    for i, raw in enumerate(header, start=1):
        name = (str(raw) if raw is not None else "").strip().lstrip("\ufeff") or f"column_{i}"
        base, n = name, 1
        while name in seen:
            n += 1
            name = f"{base}_{n}"
        seen.add(name)
        names.append(name)
    return names


# --- reading ---------------------------------------------------------------------------------


def read_rows(path: Path | str, info: FileInfo | None = None) -> Iterator[tuple[int, Row]]:
    """Every record of the file after the header, as `(line_no, row)`, in file order."""
    path = Path(path)
    info = info or inspect(path)
    if info.format == "csv":
        return _csv_rows(path, info.encoding or "utf-8", info.delimiter or ",", info.sep_line)
    if info.format == "jsonl":
        return _jsonl_rows(path, info.encoding or "utf-8")
    if info.format == "xlsx":
        return _xlsx_rows(path, info.sheet)
    raise UnsupportedFile(f"unknown format {info.format!r}")


def _clean_lines(fh: io.TextIOBase) -> Iterator[str]:
    """NUL characters cannot be stored in PostgreSQL text: they become U+FFFD."""
    for line in fh:
        yield line.replace("\x00", "\ufffd") if "\x00" in line else line


def _csv_rows(path: Path, encoding: str, delimiter: str,
              sep_line: bool) -> Iterator[tuple[int, Row]]:
    with path.open(newline="", encoding=encoding, errors=_FALLBACK_ERRORS) as fh:
        reader = csv.reader(_clean_lines(fh), delimiter=delimiter)
        if sep_line:
            next(reader, None)  # Excel's sep= line: counted in line numbers, not a header
        try:
            columns = _header_names(next(reader))
        except StopIteration:
            return
        except csv.Error as exc:
            yield reader.line_num, Unreadable(f"the header cannot be read: {exc}")
            return
        width = len(columns)
        start = reader.line_num + 1
        while True:
            try:
                values = next(reader)
            except StopIteration:
                return
            except csv.Error as exc:
                yield start, Unreadable(f"unreadable CSV record: {exc}")
                start = reader.line_num + 1
                continue
            line_no, start = start, reader.line_num + 1
            if not values or (len(values) == 1 and not values[0]):
                continue  # a blank line
            if len(values) != width and (len(values) < width or any(values[width:])):
                # a value shifted into the wrong column (an unquoted delimiter) or cut off:
                # taking the row would store values under the wrong fields
                yield line_no, Unreadable(
                    f"the record has {len(values)} values but the header has {width} columns",
                    _csv_text(values, delimiter))
                continue
            yield line_no, dict(zip(columns, values, strict=False))


def _csv_text(values: list[str], delimiter: str) -> str:
    out = io.StringIO()
    csv.writer(out, delimiter=delimiter, lineterminator="").writerow(values)
    return out.getvalue()


def _jsonl_rows(path: Path, encoding: str) -> Iterator[tuple[int, Row]]:
    with path.open(encoding=encoding, errors=_FALLBACK_ERRORS, newline=None) as fh:
        for line_no, line in enumerate(fh, start=1):
            text = line.strip().lstrip("\ufeff")
            if not text:
                continue
            try:
                value = json.loads(text)
            except ValueError as exc:
                yield line_no, Unreadable(f"invalid JSON: {exc}", text)
                continue
            if not isinstance(value, dict):
                yield line_no, Unreadable("the line is not a JSON object", text)
                continue
            if "\\u0000" in text or "\x00" in text:
                value = _strip_nul(value)
            yield line_no, value


def _strip_nul(value: Any) -> Any:
    if isinstance(value, str):
        return value.replace("\x00", "\ufffd")
    if isinstance(value, dict):
        return {_strip_nul(k): _strip_nul(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_strip_nul(v) for v in value]
    return value


# --- Excel -----------------------------------------------------------------------------------


def cell_text(value: Any) -> str:
    """An Excel cell as the text a person sees: whole numbers without `.0` (phone numbers and
    ids are often stored as numbers), dates in ISO 8601, booleans as true/false, empty as ''."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value.replace("\x00", "\ufffd")
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isfinite(value) and value.is_integer() and abs(value) < 1e16:
            return str(int(value))
        return repr(value)
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, datetime):
        if value.time() == time() and value.tzinfo is None:
            return value.date().isoformat()
        return value.isoformat()
    if isinstance(value, (date, time)):
        return value.isoformat()
    return str(value)


@contextlib.contextmanager
def _sheet(path: Path, sheet: str | None) -> Iterator[Any]:
    """The named (else the first) worksheet of a workbook, read-only. The workbook is opened
    from a file object: openpyxl judges a path by its extension, and uploads are stored under
    a server-generated name."""
    import openpyxl
    from openpyxl.utils.exceptions import InvalidFileException

    with path.open("rb") as fh:
        try:
            workbook = openpyxl.load_workbook(fh, read_only=True, data_only=True)
        except (zipfile.BadZipFile, InvalidFileException, KeyError, OSError, ValueError) as exc:
            raise UnsupportedFile(f"the Excel workbook cannot be opened: {exc}") from None
        try:
            if sheet is not None and sheet in workbook.sheetnames:
                yield workbook[sheet]
            else:
                yield workbook.worksheets[0]
        finally:
            workbook.close()


def _inspect_xlsx(path: Path) -> FileInfo:
    with _sheet(path, None) as ws:
        header = next(ws.iter_rows(max_row=1, values_only=True), ())
        return FileInfo("xlsx", _header_names([cell_text(v) for v in _trim(header)]),
                        sheet=ws.title)


def _trim(values: tuple[Any, ...]) -> tuple[Any, ...]:
    end = len(values)
    while end and (values[end - 1] is None or values[end - 1] == ""):
        end -= 1
    return values[:end]


def _xlsx_rows(path: Path, sheet: str | None) -> Iterator[tuple[int, Row]]:
    with _sheet(path, sheet) as ws:
        rows = ws.iter_rows(values_only=True)
        header = next(rows, None)
        if header is None:
            return
        columns = _header_names([cell_text(v) for v in _trim(header)])
        width = len(columns)
        for line_no, values in enumerate(rows, start=2):
            values = _trim(values)
            if not values:
                continue
            n = len(values)
            row = {c: cell_text(values[i]) if i < n else "" for i, c in enumerate(columns)}
            for i in range(width, len(values)):
                row[f"column_{i + 1}"] = cell_text(values[i])
            yield line_no, row

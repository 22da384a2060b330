"""File imports: a CSV, JSON Lines or Excel file streamed through the ingestion write path.

A file is identified by its SHA-256. Rows are read one at a time and handed to `ingest_batch`
in batches; each batch is ONE write transaction that also records its rejected rows and moves
the run's `checkpoint_line` and counters forward. So a crash (even `kill -9`) loses only the
batch in flight (a process reading ahead holds one more, uncommitted), nothing acknowledged,
and importing the same file into the same source again resumes the unfinished run from its
checkpoint (`start_or_resume_import`). The content-hash idempotency of the write path is the
second guard: a row that did land is `unchanged` when it is sent again, so a re-import of a
finished file changes nothing. Unless the mapping or settings changed: profiles remember the
fingerprint of those they were standardised with (`settings_fingerprint`), and a re-import with
other ones standardises the raw records already kept again (`updated` where a value changes).

Values left out of a profile (flagged) are kept per import with the value as written, beside
the rejected rows, so the report lists both; rows without flags cost nothing more.

Each batch first claims its range of lines with a conditional UPDATE of the checkpoint, so two
processes resuming the same run cannot both commit the same rows: the second one gets a
`Conflict` and stops.
"""

from __future__ import annotations

import contextlib
import csv
import gc
import hashlib
import io
import json
import logging
import multiprocessing
import os
import re
import secrets
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from pathlib import Path
from typing import IO, Any, BinaryIO

from sqlalchemy import insert, select, tuple_, update
from sqlalchemy.orm import Session, sessionmaker

from accord.access import audit
from accord.access.policy import SYSTEM, Principal
from accord.access.service import require
from accord.core import jobs
from accord.core.clock import utcnow
from accord.core.db import session_factory
from accord.core.errors import Conflict, NotFound, Problem, ValidationProblem
from accord.core.memory import no_cycle_collection
from accord.core.settings import get_settings
from accord.integration import readers
from accord.integration.ingest import (
    Incoming,
    Prepared,
    canonical_json,
    content_hash,
    ingest_batch,
    prepare_profiles,
)
from accord.integration.mapping import (
    KINDS,
    Mapping,
    as_written,
    check_columns,
    column_value,
    parse_mapping,
    settle_mapping,
)
from accord.integration.readers import FileInfo, Unreadable
from accord.models import ImportFlag, ImportRejection, ImportRun, Source, User

log = logging.getLogger("accord.imports")

IMPORT_JOB = "integration.import"
DEFAULT_BATCH = 5000  # rows per transaction: ~0.25 s of SQLite's write lock each (bench/README)
MAX_BATCH = 50_000
# Uploads above this size are imported by a background job instead of inside the request.
INLINE_MAX_BYTES = 500_000
MAX_UPLOAD_BYTES = 500_000_000
PENDING_UPLOAD_HOURS = 24
_TOKEN = re.compile(r"^[0-9a-f]{32}$")


# --- what a file means -------------------------------------------------------------------------


@dataclass
class Plan:
    """A file's format and the mapping that will be applied to it, with anything to watch."""

    info: FileInfo
    mapping: Mapping
    warnings: list[str] = field(default_factory=list)

    @property
    def unmapped(self) -> list[str]:
        return self.mapping.unmapped(self.info.columns)


def plan_file(path: Path, source: Source, mapping: Mapping | None = None, *,
              kind: str | None = None, name: str | None = None) -> Plan:
    """Inspect the file and settle its mapping (`settle_mapping`): the columns the given
    mapping names, then those the source's saved mapping names, and every other column
    detected from the header."""
    try:
        info = readers.inspect(path, name)
    except readers.UnsupportedFile as exc:
        raise ValidationProblem(str(exc), field="file") from None
    except OSError as exc:
        raise ValidationProblem(f"the file cannot be read: {exc.strerror or exc}",
                                field="file") from None
    saved = None
    if source.mapping:
        saved = parse_mapping(source.mapping)
        saved.layout = "source"
    mapping = settle_mapping(info.columns, mapping, saved, kind)
    if not info.columns and info.format != "jsonl":
        raise ValidationProblem("the file has no header row", field="file")
    warnings = check_columns(mapping, info.columns, strict=info.format != "jsonl")
    if not mapping.mapped_fields:
        raise ValidationProblem("no column of the file could be mapped to a field: "
                                "give a mapping", field="mapping")
    if mapping.external_id is None:
        warnings.append("no id column: rows are identified by their content, so a changed row "
                        "arrives as a new record rather than an update")
    return Plan(info, mapping, warnings)


PREVIEW_ROWS = 20


def preview(path: Path, source: Source, mapping: Mapping | None = None, *,
            kind: str | None = None, name: str | None = None,
            limit: int = PREVIEW_ROWS) -> dict[str, Any]:
    """What an import of this file would do, from its first rows, writing nothing: the detected
    format and mapping, the unmapped columns, and each row mapped and standardised with the
    flags of values that fail."""
    from accord.integration.standardise import standardise_profile

    plan = plan_file(path, source, mapping, kind=kind, name=name)
    extract = plan.mapping.compile()
    country = plan.mapping.default_country or source.default_country
    rows: list[dict[str, Any]] = []
    for line_no, row in readers.read_rows(path, plan.info):
        if len(rows) >= limit:
            break
        if isinstance(row, Unreadable):
            rows.append({"line_no": line_no, "raw": {}, "external_id": None, "subject": None,
                         "fields": {}, "values": {}, "flags": {}, "error": row.reason})
            continue
        ext, subject, fields = extract(row)
        entry: dict[str, Any] = {"line_no": line_no, "raw": row, "external_id": ext,
                                 "subject": subject, "fields": fields, "values": {},
                                 "flags": {}, "error": None}
        if plan.mapping.kind == "profile":
            std = standardise_profile(fields, default_country=country)
            entry["values"] = json.loads(json.dumps(std.values, default=str))
            entry["flags"] = dict(std.flags)
            identifying = ("first_name", "last_name", "email", "phone", "national_id")
            if not any(std.values.get(k) for k in identifying):
                entry["error"] = "no usable name, e-mail, phone or national id"
        else:
            entry["values"] = dict(fields)
            if not subject:
                entry["error"] = "no customer reference"
        rows.append(entry)
    return {"file": {"name": _display_name(name or path.name), "size": path.stat().st_size,
                     **plan.info.describe()},
            "mapping": plan.mapping.to_dict(), "unmapped": plan.unmapped,
            "warnings": plan.warnings, "rows": rows}


def settings_fingerprint(mapping: Mapping, country: str | None) -> str:
    """What turns a raw row into profile values, hashed: the columns mapped to fields (in
    order: the first non-empty one wins), the date order and the country national values are
    read in. Stored on each profile, it tells a re-import with a corrected mapping or country
    (standardise the kept raw records again) from a plain replay (change nothing)."""
    columns = mapping.to_dict()["columns"]  # as written down, whatever one column may fill
    settings = {"columns": [[c, f] for c, f in columns.items() if f],
                "date_order": mapping.date_order, "country": country}
    return hashlib.sha256(canonical_json(settings).encode()).hexdigest()


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while chunk := fh.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


# --- starting, resuming, running --------------------------------------------------------------


def start_or_resume_import(session: Session, principal: Principal, source: Source, path: Path, *,
                           file_name: str | None = None, mapping: Mapping | None = None,
                           kind: str | None = None, sha256: str | None = None) -> ImportRun:
    """The run that will import this file into this source: the unfinished one (same file, same
    mapping) if there is one, else a new one. The caller commits."""
    require(principal, "imports", "create")
    plan = plan_file(path, source, mapping, kind=kind, name=file_name)
    digest = sha256 or file_sha256(path)
    wanted = plan.mapping.to_dict()
    unfinished = session.scalars(
        select(ImportRun).where(ImportRun.source_id == source.id,
                                ImportRun.file_sha256 == digest,
                                ImportRun.status.in_(("running", "failed")))
        .order_by(ImportRun.id.desc())
    ).all()
    for run in unfinished:
        if run.mapping == wanted and run.file_format == plan.info.format:
            if run.status == "failed":
                run.status, run.error = "running", None
            audit.record(session, principal, "resume", "imports", run.id, (),
                         {"source": source.name, "checkpoint_line": run.checkpoint_line})
            session.flush()
            return run
    name = _display_name(file_name or path.name)
    run = ImportRun(source_id=source.id, file_name=name, file_sha256=digest,
                    file_format=plan.info.format, mapping=wanted, status="running",
                    created_by=principal.user_id)
    session.add(run)
    session.flush()
    for old in unfinished:  # the same file again with another mapping: the old run is over
        if old.status == "running":
            old.status = "failed"
            old.error = f"superseded by import {run.id} with a different mapping"
    audit.record(session, principal, "create", "imports", run.id, ("file_name", "mapping"),
                 {"source": source.name, "format": plan.info.format, "sha256": digest})
    return run


Factory = Callable[[], Session]
Progress = Callable[[ImportRun], None]


def _factory(url_or_factory: str | None | Factory) -> Factory:
    if url_or_factory is None or isinstance(url_or_factory, str):
        return session_factory(url_or_factory, write=True)
    return url_or_factory


def run_import(url_or_session_factory: str | None | Factory, principal: Principal,
               source: str | int, path: Path | str, mapping: Mapping | None = None, *,
               file_name: str | None = None, kind: str | None = None,
               batch_size: int = DEFAULT_BATCH, progress: Progress | None = None,
               read_ahead: bool | None = None) -> ImportRun:
    """Import a file from start to end (or resume it), in its own transactions."""
    factory = _factory(url_or_session_factory)
    path = Path(path)
    with factory() as session:
        src = _source(session, source)
        run = start_or_resume_import(session, principal, src, path, file_name=file_name,
                                     mapping=mapping, kind=kind)
        session.commit()
        run_id = run.id
    return continue_import(factory, principal, run_id, path, batch_size=batch_size,
                           progress=progress, read_ahead=read_ahead)


def _source(session: Session, source: str | int) -> Source:
    found = (session.get(Source, source) if isinstance(source, int)
             else session.scalar(select(Source).where(Source.name == source)))
    if found is None:
        raise NotFound(f"no source {source!r}", field="source")
    if not found.active:
        raise Conflict(f"the source {found.name!r} is deactivated", field="source")
    return found


def continue_import(url_or_session_factory: str | None | Factory, principal: Principal,
                    import_id: int, path: Path | str, *, batch_size: int = DEFAULT_BATCH,
                    progress: Progress | None = None, revive: bool = False,
                    read_ahead: bool | None = None) -> ImportRun:
    """Stream the file from the run's checkpoint to its end, one transaction per batch.
    `revive` resumes a run that failed (a job's retry). `read_ahead` has a second process read,
    hash and standardise the next batch while this one writes (by default: for files of
    `READ_AHEAD_MIN_BYTES` or more on a machine with two CPUs or more); the batches and their
    transactions are the same either way. The reader is spawned, so a program that imports
    this way must start from a guarded main module (`if __name__ == "__main__":`), as any that
    spawns processes must.
    """
    factory = _factory(url_or_session_factory)
    path = Path(path)
    batch_size = max(1, min(batch_size, MAX_BATCH))
    with factory() as session:
        run = session.get(ImportRun, import_id)
        if run is None:
            raise NotFound(f"import {import_id} does not exist")
        if run.status == "completed":
            return run
        if run.status == "failed" and revive:
            run.status, run.error = "running", None
            session.commit()
        if run.status != "running":
            raise Conflict(f"import {import_id} is {run.status}", field="import")
        mapping = parse_mapping(run.mapping)
        source_id, checkpoint = run.source_id, run.checkpoint_line
        expected_sha, name = run.file_sha256, run.file_name
        source = session.get(Source, source_id)
        country = mapping.default_country or (source.default_country if source else None)
    if file_sha256(path) != expected_sha:
        raise Conflict("the file is not the one this import started with", field="file")
    if read_ahead is None:
        read_ahead = _read_ahead_by_default(path)
    try:
        batch = _Batch(factory, principal, source_id, import_id, checkpoint, country, mapping)
        with (_read_elsewhere(path, name, mapping, checkpoint, batch_size, country)
              if read_ahead else contextlib.closing(
                  _cuts(path, name, mapping, checkpoint, batch_size))) as cuts:
            while True:
                # a batch's rows, payloads and values are acyclic and live until its commit:
                # the cyclic collector would only traverse them again and again; it runs
                # between batches, so the cycles of sessions and errors are still collected
                with no_cycle_collection():
                    cut = next(cuts, None)
                    if cut is None:
                        break
                    run = batch.commit(cut)
                    if progress:
                        progress(run)
        return run
    except Conflict:
        raise  # another process owns the run now: leave it alone
    except Exception as exc:
        _fail(factory, import_id, exc)
        raise


def _fail(factory: Factory, import_id: int, exc: Exception) -> None:
    message = exc.detail if isinstance(exc, Problem) else f"{type(exc).__name__}: {exc}"
    try:
        with factory() as session:
            session.execute(update(ImportRun).where(ImportRun.id == import_id,
                                                    ImportRun.status == "running")
                            .values(status="failed", error=message[:2000]))
            session.commit()
    except Exception:  # the original error matters more
        log.exception("could not mark import %s failed", import_id)


@dataclass
class _Cut:
    """The rows of one batch, read and not yet committed. `hashed` (canonical JSON and content
    hash per item) and `standardised` (per item, profiles only) when read ahead elsewhere."""

    items: list[Incoming]
    bad: list[tuple[int, str | None, str, str]]
    last_line: int
    final: bool  # the file ends with it
    hashed: list[tuple[str, str]] | None = None
    standardised: list[Prepared] | None = None


def _cuts(path: Path, name: str | None, mapping: Mapping, checkpoint: int,
          size: int) -> Iterator[_Cut]:
    """The file's rows after the checkpoint, `size` at a time; the last cut says so (it may be
    empty: a file that ends right after a full batch, or a run resumed at its end)."""
    info = readers.inspect(path, name)
    extract, kind = mapping.compile(), mapping.kind
    items: list[Incoming] = []
    bad: list[tuple[int, str | None, str, str]] = []
    last_line = checkpoint
    for line_no, row in readers.read_rows(path, info):
        if line_no <= checkpoint:  # committed by an earlier run
            continue
        if isinstance(row, Unreadable):
            bad.append((line_no, None, row.reason, row.raw))
        else:
            ext, subject, fields = extract(row)
            items.append(Incoming(kind, row, fields, ext, line_no, subject))
        last_line = line_no
        if len(items) + len(bad) >= size:
            yield _Cut(items, bad, last_line, final=False)
            items, bad = [], []
    yield _Cut(items, bad, last_line, final=True)


# --- reading ahead in a second process -------------------------------------------------------
#
# The importing process spends about a third of a row's time reading, mapping, hashing and
# standardising it, none of which needs the database. With `read_ahead`, a spawned process does
# that for the next batch while this one writes the batch before, and sends each batch over a
# pipe as plain tuples (an `Incoming` is rebuilt here: dataclasses cost twice as much to
# unpickle). The batches, their transactions and checkpoints are exactly those of the
# in-process import; the reader is at most one batch ahead, and it ends when the pipe breaks,
# so a killed import leaves no reader behind.

# Below this size a file is imported in-process: the reader's start (importing Accord in a new
# interpreter, about a second of CPU) would cost about what it saves (50,000 rows, 5.6 MB:
# measured even).
READ_AHEAD_MIN_BYTES = 8_000_000
_Wire = tuple[list[tuple[dict[str, Any], dict[str, Any] | None, str | None, int | None,
                         str | None]],
              list[tuple[int, str | None, str, str]], int, bool,
              list[tuple[str, str]], list[Prepared] | None]


def _read_ahead_by_default(path: Path) -> bool:
    return (os.cpu_count() or 1) > 1 and path.stat().st_size >= READ_AHEAD_MIN_BYTES


def _to_wire(cut: _Cut, country: str | None) -> _Wire:
    """Hash and standardise a cut, and flatten it for the pipe (a profile's fields are not
    sent: its standardised row replaces them)."""
    profile = bool(cut.items) and cut.items[0].kind == "profile"
    hashed = []
    for item in cut.items:
        text = canonical_json(item.payload)
        hashed.append((text, content_hash(item.kind, text)))
    standardised = (prepare_profiles([item.fields for item in cut.items], country)
                    if profile else None)
    rows = [(item.payload, None if profile else item.fields, item.external_id, item.line_no,
             item.subject_key) for item in cut.items]
    return rows, cut.bad, cut.last_line, cut.final, hashed, standardised


def _from_wire(wire: _Wire, kind: str) -> _Cut:
    rows, bad, last_line, final, hashed, standardised = wire
    items = [Incoming(kind, payload, {} if fields is None else fields, ext, line_no, subject)
             for payload, fields, ext, line_no, subject in rows]
    return _Cut(items, bad, last_line, final, hashed, standardised)


def _reader(conn: Connection, path: str, name: str | None, mapping: dict[str, Any],
            checkpoint: int, size: int, country: str | None) -> None:
    """The reading process: every cut of the file, hashed and standardised, then None."""
    gc.disable()  # acyclic rows only, and the process ends with the file
    try:
        for cut in _cuts(Path(path), name, parse_mapping(mapping), checkpoint, size):
            conn.send(_to_wire(cut, country))
        conn.send(None)
    except BrokenPipeError:  # the importing process is gone or gave up
        return
    except BaseException as exc:
        with contextlib.suppress(OSError):
            conn.send(("error", f"{type(exc).__name__}: {exc}"))
    finally:
        conn.close()


class ReaderFailed(RuntimeError):
    """The reading process stopped without finishing the file."""


@contextlib.contextmanager
def _read_elsewhere(path: Path, name: str | None, mapping: Mapping, checkpoint: int,
                    size: int, country: str | None) -> Iterator[Iterator[_Cut]]:
    """The cuts of `_cuts`, read, hashed and standardised by a spawned process (not forked: the
    importing process may run threads)."""
    context = multiprocessing.get_context("spawn")
    ours, theirs = context.Pipe(duplex=False)
    process = context.Process(target=_reader, name="accord-import-reader", daemon=True,
                              args=(theirs, str(path), name, mapping.to_dict(), checkpoint,
                                    size, country))
    process.start()
    theirs.close()

    def receive() -> Iterator[_Cut]:
        while True:
            try:
                wire = ours.recv()
            except (EOFError, OSError):  # between batches, or in the middle of one
                process.join(5)
                raise ReaderFailed(f"the reading process ended (exit code "
                                   f"{process.exitcode})") from None
            if wire is None:
                return
            if wire[0] == "error":
                raise ReaderFailed(f"reading the file failed: {wire[1]}")
            yield _from_wire(wire, mapping.kind)

    try:
        yield receive()
    finally:
        ours.close()  # a reader blocked on its pipe ends here
        process.join(5)
        if process.is_alive():  # pragma: no cover - a reader stuck outside its pipe
            process.terminate()
            process.join()


class _Batch:
    """How a cut is committed, with the run's checkpoint and counters."""

    def __init__(self, factory: Factory, principal: Principal, source_id: int, import_id: int,
                 checkpoint: int, country: str | None, mapping: Mapping) -> None:
        self.factory, self.principal = factory, principal
        self.country = country  # the file's mapping's, else the source's
        self.source_id, self.import_id = source_id, import_id
        self.checkpoint = checkpoint
        self.fingerprint = settings_fingerprint(mapping, country)
        self.columns: dict[str, list[str]] = {}  # field -> the columns that fill it, in order
        for column, name in mapping.mapped_fields.items():
            self.columns.setdefault(name, []).append(column)

    def written(self, payload: dict[str, Any], name: str) -> str:
        """A flagged field's value as the file wrote it: that of the first column mapped to it
        that has one (or of the field it was taken from: an address line from the address)."""
        for source_field in (name, *_TAKEN_FROM.get(name, ())):
            for column in self.columns.get(source_field, ()):
                value = column_value(payload, column)
                if value is not None and (text := as_written(value)):
                    return text
        return ""

    def commit(self, cut: _Cut) -> ImportRun:
        final = cut.final
        with self.factory() as session:
            # claim the lines first: a second process resuming the same run stops here
            claimed = session.execute(
                update(ImportRun)
                .where(ImportRun.id == self.import_id, ImportRun.status == "running",
                       ImportRun.checkpoint_line == self.checkpoint)
                .values(checkpoint_line=cut.last_line)
            ).rowcount
            if not claimed:
                session.rollback()
                raise Conflict(f"import {self.import_id} is being run by another process",
                               field="import")
            counts = dict.fromkeys(("accepted", "updated", "unchanged", "rejected",
                                    "flagged"), 0)
            flags: list[dict[str, Any]] = []
            rejections = [
                {"import_id": self.import_id, "line_no": line_no, "field": fld,
                 "reason": reason[:500], "raw_row": raw}
                for line_no, fld, reason, raw in cut.bad
            ]
            counts["rejected"] += len(cut.bad)
            if cut.items:
                source = session.get(Source, self.source_id)
                assert source is not None
                outcomes = ingest_batch(session, self.principal, source, cut.items,
                                        import_id=self.import_id,
                                        default_country=self.country,
                                        standardised=cut.standardised, hashed=cut.hashed,
                                        standardised_with=self.fingerprint)
                for item, outcome in zip(cut.items, outcomes, strict=True):
                    counts[outcome.status] += 1
                    if outcome.flags:  # rare: only rows with flagged values cost anything here
                        counts["flagged"] += 1
                        flags.extend(
                            {"import_id": self.import_id, "line_no": item.line_no,
                             "field": name[:120], "reason": reason[:500],
                             "value": self.written(item.payload, name)}
                            for name, reason in outcome.flags.items())
                    if outcome.status == "rejected":
                        rejections.append({
                            "import_id": self.import_id, "line_no": item.line_no,
                            "field": (outcome.field or None) and outcome.field[:120],
                            "reason": (outcome.reason or "rejected")[:500],
                            "raw_row": _raw(item.payload)})
            if rejections:
                rejections.sort(key=lambda r: r["line_no"])
                session.execute(insert(ImportRejection), rejections)
            if flags:
                session.execute(insert(ImportFlag), flags)
            values: dict[str, Any] = {
                "total": ImportRun.total + len(cut.items) + len(cut.bad),
                **{k: getattr(ImportRun, k) + v for k, v in counts.items() if v},
            }
            if final:
                values.update(status="completed", finished_at=utcnow(), error=None)
            session.execute(update(ImportRun).where(ImportRun.id == self.import_id)
                            .values(**values))
            session.commit()
            run = session.get(ImportRun, self.import_id, populate_existing=True)
            assert run is not None
            session.expunge(run)
        self.checkpoint = cut.last_line
        return run


def _raw(payload: dict[str, Any]) -> str:
    return json.dumps(payload, ensure_ascii=False, default=str)


# fields the standardiser fills from another one: a flagged address line, postcode or city may
# have been split from the address, a name or title from the full name
_TAKEN_FROM = {"address_line1": ("address",), "postcode": ("address",), "city": ("address",),
               "first_name": ("full_name",), "last_name": ("full_name",),
               "title": ("first_name", "last_name", "full_name")}


# --- reading runs and their reports ---------------------------------------------------------


def get_import(session: Session, principal: Principal, import_id: int) -> ImportRun:
    require(principal, "imports", "read")
    run = session.get(ImportRun, import_id)
    if run is None:
        raise NotFound(f"import {import_id} does not exist")
    return run


def list_imports(session: Session, principal: Principal, *, source_id: int | None = None,
                 before_id: int | None = None, limit: int = 50) -> list[ImportRun]:
    """Newest first; `before_id` continues a page (keyset)."""
    require(principal, "imports", "read")
    query = select(ImportRun).order_by(ImportRun.id.desc()).limit(max(1, min(limit, 500)))
    if source_id is not None:
        query = query.where(ImportRun.source_id == source_id)
    if before_id is not None:
        query = query.where(ImportRun.id < before_id)
    return list(session.scalars(query))


def flag_rows(session: Session, import_id: int, *, chunk: int = 1000,
              limit: int | None = None) -> Iterator[ImportFlag]:
    """The flagged values of an import in line and field order, in keyset chunks (flat
    memory)."""
    return _keyset(session, ImportFlag, import_id, ("line_no", "field"), (0, ""), chunk, limit)


def report_rows(session: Session, import_id: int, *, chunk: int = 1000,
                limit: int | None = None) -> Iterator[ImportRejection]:
    """The rejected rows of an import in line order, read in keyset chunks (flat memory)."""
    return _keyset(session, ImportRejection, import_id, ("line_no",), (0,), chunk, limit)


def _keyset(session: Session, model: Any, import_id: int, keys: tuple[str, ...],
            after: tuple[Any, ...], chunk: int, limit: int | None) -> Iterator[Any]:
    columns = [getattr(model, k) for k in keys]
    given = 0
    while True:
        rows = session.scalars(
            select(model).where(model.import_id == import_id, tuple_(*columns) > tuple_(*after))
            .order_by(*columns).limit(chunk)).all()
        for row in rows:
            yield row
            given += 1
            if limit is not None and given >= limit:
                return
        if len(rows) < chunk:
            return
        after = tuple(getattr(rows[-1], k) for k in keys)
        session.expunge_all()


SUMMARY_COLUMNS = ("import_id", "source", "file", "status", "total", "accepted", "updated",
                   "unchanged", "rejected", "flagged", "started_at", "finished_at")
REJECTION_COLUMNS = ("line_no", "field", "reason", "row")
FLAG_COLUMNS = ("line_no", "field", "reason", "value")


def _cell(value: Any) -> str:
    """Spreadsheet-safe: a value a spreadsheet would run as a formula is prefixed with '."""
    text = "" if value is None else str(value)
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


def report_records(session: Session, run: ImportRun) -> Iterator[list[Any]]:
    """The report, row by row: a summary table, a blank line, every rejected row with its line
    number, field and reason (and the row itself), a blank line, then every flagged value (left
    out of its profile) with its line number, field, reason and the value as written."""
    source = session.get(Source, run.source_id)
    run_id = run.id
    yield list(SUMMARY_COLUMNS)
    yield [_cell(v) for v in (
        run_id, source.name if source else run.source_id, run.file_name, run.status, run.total,
        run.accepted, run.updated, run.unchanged, run.rejected, run.flagged,
        run.created_at.isoformat() if run.created_at else "",
        run.finished_at.isoformat() if run.finished_at else "")]
    yield []
    yield list(REJECTION_COLUMNS)
    for rejection in report_rows(session, run_id):
        yield [rejection.line_no, _cell(rejection.field), _cell(rejection.reason),
               _cell(rejection.raw_row)]
    yield []
    yield list(FLAG_COLUMNS)
    for flag in flag_rows(session, run_id):
        yield [flag.line_no, _cell(flag.field), _cell(flag.reason), _cell(flag.value)]


def write_report(session: Session, run: ImportRun, out: IO[str]) -> None:
    csv.writer(out).writerows(report_records(session, run))


def report_csv_chunks(session: Session, run: ImportRun, size: int = 64 * 1024) -> Iterator[str]:
    """The CSV report in pieces of about `size` characters, for streaming a large one."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    for record in report_records(session, run):
        writer.writerow(record)
        if buffer.tell() >= size:
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue()


def summary(run: ImportRun) -> dict[str, Any]:
    return {"id": run.id, "status": run.status, "total": run.total, "accepted": run.accepted,
            "updated": run.updated, "unchanged": run.unchanged, "rejected": run.rejected,
            "flagged": run.flagged, "checkpoint_line": run.checkpoint_line}


# --- uploads (API and UI) ----------------------------------------------------------------------


@dataclass
class Upload:
    token: str
    path: Path
    size: int
    sha256: str


def upload_dir() -> Path:
    return get_settings().data_dir / "imports"


def _display_name(name: str) -> str:
    """The uploader's file name, for display only (never used as a path)."""
    name = name.replace("\\", "/").rsplit("/", 1)[-1]
    name = "".join(ch for ch in name if ch.isprintable()).strip()
    return (name or "upload")[:255]


def store_upload(stream: BinaryIO, owner_id: int | None, *,
                 max_bytes: int | None = None) -> Upload:
    """Copy an uploaded file under the data dir with a server-generated name, hashing it."""
    max_bytes = max_bytes or MAX_UPLOAD_BYTES
    folder = upload_dir()
    folder.mkdir(parents=True, exist_ok=True)
    _sweep(folder)
    token = secrets.token_hex(16)
    path = folder / f"{owner_id or 0}-{token}.upload"
    digest, size = hashlib.sha256(), 0
    try:
        with path.open("xb") as out:
            while chunk := stream.read(1 << 20):
                size += len(chunk)
                if size > max_bytes:
                    raise Problem(f"the file is larger than {max_bytes:,} bytes", field="file",
                                  status=413, title="Payload too large")
                digest.update(chunk)
                out.write(chunk)
    except BaseException:
        path.unlink(missing_ok=True)
        raise
    if size == 0:
        path.unlink(missing_ok=True)
        raise ValidationProblem("the file is empty", field="file")
    return Upload(token, path, size, digest.hexdigest())


def stored_upload(token: str, owner_id: int | None) -> Path:
    """A pending upload of this user, by its token (anything else is not found)."""
    if not _TOKEN.match(token or ""):
        raise NotFound("no such upload", field="upload")
    path = upload_dir() / f"{owner_id or 0}-{token}.upload"
    if not path.is_file():
        raise NotFound("the upload has expired: upload the file again", field="upload")
    return path


def discard_upload(path: Path) -> None:
    with contextlib.suppress(OSError):
        path.unlink()


def _sweep(folder: Path) -> None:
    """Uploads previewed but never imported are removed after a day (they hold personal data)."""
    cutoff = time.time() - PENDING_UPLOAD_HOURS * 3600
    with contextlib.suppress(OSError):
        for entry in os.scandir(folder):
            with contextlib.suppress(OSError):
                if entry.name.endswith(".upload") and entry.stat().st_mtime < cutoff:
                    os.unlink(entry.path)


def start_upload_import(session: Session, principal: Principal, source: Source, upload: Path, *,
                        file_name: str, mapping: Mapping | None = None, kind: str | None = None,
                        batch_size: int = DEFAULT_BATCH) -> tuple[ImportRun, bool]:
    """Create (or resume) the run of an uploaded file; small files are imported at once by the
    caller, large ones by a job. Returns the run and whether it was queued. The caller commits
    before running it."""
    run = start_or_resume_import(session, principal, source, upload, file_name=file_name,
                                 mapping=mapping, kind=kind)
    queued = upload.stat().st_size > INLINE_MAX_BYTES
    if queued:
        jobs.enqueue(session, IMPORT_JOB, {"import_id": run.id, "path": str(upload),
                                           "user_id": principal.user_id,
                                           "batch_size": batch_size, "discard": True},
                     max_attempts=10)
    return run, queued


def finish_upload_import(principal: Principal, run_id: int, upload: Path, *,
                         batch_size: int = DEFAULT_BATCH) -> ImportRun:
    """Run an uploaded file's import in this process; the upload is removed once complete."""
    run = continue_import(None, principal, run_id, upload, batch_size=batch_size)
    if run.status == "completed":
        discard_upload(upload)
    return run


@jobs.handler(IMPORT_JOB)
def _import_job(session: Session, payload: dict[str, Any]) -> None:
    """A large upload, imported in the background. A retry resumes from the checkpoint."""
    principal = SYSTEM
    user_id = payload.get("user_id")
    if user_id is not None:
        from accord.access.service import principal_for

        user = session.get(User, user_id)
        if user is not None:
            principal = principal_for(user)
        session.rollback()  # end the read: on SQLite it would hold the write lock the batches need
    factory = sessionmaker(session.get_bind(), expire_on_commit=False)
    path = Path(payload["path"])
    run = continue_import(factory, principal, int(payload["import_id"]), path,
                          batch_size=int(payload.get("batch_size") or DEFAULT_BATCH),
                          revive=True)
    if run.status == "completed" and payload.get("discard"):
        discard_upload(path)


# --- the command line --------------------------------------------------------------------------


def cli_import(path: Path, source_name: str, mapping_file: Path | None, kind: str | None,
               batch_size: int, report_csv: Path | None, echo: Callable[..., Any],
               read_ahead: bool | None = None) -> int:
    """`accord import`: returns the exit code (0 done, 2 refused). A source that does not exist
    yet is created, under the API's rules for its name, once the file is found importable: a
    refused file leaves no source behind."""
    from accord.integration.mapping import load_mapping
    from accord.integration.sources import create_source

    if kind is not None and kind not in KINDS:
        echo(f"error: --kind must be one of {', '.join(KINDS)}", err=True)
        return 2
    try:
        mapping = load_mapping(mapping_file.read_text(encoding="utf-8")) if mapping_file else None
        factory = session_factory(write=True)
        with factory() as session:
            source = session.scalar(select(Source).where(Source.name == source_name))
            # a new source has no saved mapping or country: plan the file as if it existed
            plan = plan_file(path, source or Source(name=source_name, kind="file", mapping={}),
                             mapping, kind=kind, name=path.name)
            if source is None:
                source = create_source(session, SYSTEM, name=source_name, kind="file")
                session.commit()
                echo(f"Created source {source_name!r} (kind file, trust rank {source.trust_rank}).")
        _describe(plan, echo)
        started = time.perf_counter()

        def show(run: ImportRun) -> None:
            echo(f"  line {run.checkpoint_line:,}: {run.total:,} rows "
                 f"({run.accepted:,} accepted, {run.updated:,} updated, "
                 f"{run.unchanged:,} unchanged, {run.rejected:,} rejected)", err=True)

        run = run_import(factory, SYSTEM, source_name, path, plan.mapping, file_name=path.name,
                         batch_size=batch_size, progress=show, read_ahead=read_ahead)
    except Problem as exc:
        echo(f"error: {exc.detail}", err=True)
        for err in exc.errors or []:
            if err.get("message") and err["message"] not in exc.detail:
                echo(f"  {err.get('field')}: {err['message']}", err=True)
        return 2
    seconds = time.perf_counter() - started
    echo(f"Import {run.id} {run.status}: {run.total:,} rows in {seconds:.1f} s — "
         f"{run.accepted:,} accepted, {run.updated:,} updated, {run.unchanged:,} unchanged, "
         f"{run.rejected:,} rejected; {run.flagged:,} with flagged values.")
    if report_csv is not None:
        with factory() as session, report_csv.open("w", newline="", encoding="utf-8") as out:
            write_report(session, run, out)
        echo(f"Report written to {report_csv}.")
        return 0
    with factory() as session:
        if run.rejected:
            echo("Rejected rows:")
            for rejection in report_rows(session, run.id, limit=10):
                echo(f"  line {rejection.line_no}: {rejection.field or '-'}: {rejection.reason}")
            if run.rejected > 10:
                echo(f"  ... and {run.rejected - 10:,} more (--report-csv FILE lists them all)")
        if run.flagged:
            echo("Flagged values (left out of the profile, kept in the raw record):")
            flags = list(flag_rows(session, run.id, limit=11))
            for flag in flags[:10]:
                echo(f"  line {flag.line_no}: {flag.field}: {flag.reason} ({flag.value!r})")
            if len(flags) > 10:
                echo("  ... and more (--report-csv FILE lists them all)")
    return 0


def _describe(plan: Plan, echo: Callable[..., Any]) -> None:
    info, m = plan.info, plan.mapping
    details = [info.format]
    if info.encoding:
        details.append(f"encoding {info.encoding}")
    if info.delimiter:
        details.append("delimiter " + {"\t": "tab"}.get(info.delimiter, repr(info.delimiter)))
    echo(f"File: {', '.join(details)}; {len(info.columns)} columns.")
    echo(f"Mapping ({m.layout}): {m.kind} rows, id column {m.external_id or '(none)'}"
         + (f", customer column {m.subject}" if m.subject else ""))
    fields = m.mapped_fields
    for column in [c for c in info.columns if c in fields] + [c for c in fields
                                                              if c not in info.columns]:
        echo(f"  {column} -> {fields[column]}")
    if plan.unmapped:
        echo(f"  unmapped (kept in the raw record): {', '.join(plan.unmapped)}")
    for warning in plan.warnings:
        echo(f"warning: {warning}", err=True)

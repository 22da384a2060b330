"""Ingestion throughput: one function per figure, each printed beside a baseline measured in the
same process.

  * import   `accord import` of a generated CRM-style CSV (default 1,000,000 rows) into a fresh
             SQLite database, in rows/s, beside a plain `csv.reader` + `sqlite3.executemany` of
             the same rows into one table (same pragmas); with the process's resident memory
             sampled after every batch, to show that it stays flat. Target: 50,000 rows/s.
             Then the floor: the raw records and profiles the import stored, written again with
             plain `sqlite3.executemany` into a copy of the database as it was before the import
             (same schema and indexes, same pragmas, same rows per transaction). No import that
             stores the same rows can be faster than that on this SQLite.
  * events   the Segment-compatible collection API: `/v1/batch` requests of 100 events from 16
             concurrent keep-alive clients against `accord serve` on SQLite, beside
             `GET /health/live` over the same connections (see bench/ingest_events.py, which
             also runs it on its own with more options). Target: 10,000 events/s.

    python bench/ingest.py [--only import] [--rows N] [--batch-size B] [--profile]

`--profile` runs the import under cProfile and prints the 25 most expensive functions.
"""

from __future__ import annotations

import argparse
import csv
import gc
import os
import random
import resource
import shutil
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))

COLUMNS = ("id", "first_name", "last_name", "email", "phone", "date_of_birth", "street",
           "postcode", "city", "country", "loyalty_tier")
FIRST = ("Anna", "Ben", "Chloé", "David", "Emma", "Felix", "Grace", "Hannah", "Isaac", "Jonas",
         "Karin", "Liam", "Mia", "Noah", "Olivia", "Paul", "Quentin", "Rosa", "Sofia", "Tom",
         "Ulrike", "Victor", "Wiebke", "Xavier", "Yusuf", "Zoë")
LAST = ("Smith", "Müller", "García", "Rossi", "Dubois", "Jansen", "Kowalski", "Nilsson", "Brown",
        "Schmidt", "Martin", "Bianchi", "de Vries", "O'Neill", "Novak", "Fischer", "Weber",
        "Moreau", "Lopez", "Taylor")
CITIES = (("London", "GB", "SW1A 1AA"), ("Berlin", "DE", "10115"), ("Paris", "FR", "75001"),
          ("Madrid", "ES", "28013"), ("Milan", "IT", "20121"), ("Amsterdam", "NL", "1012 AB"))
PHONES = {"GB": "020 7946 {:04d}", "DE": "030 1234{:04d}", "FR": "01 42 68 {:02d} {:02d}",
          "ES": "91 123 {:04d}", "IT": "02 1234 {:04d}", "NL": "020 123 {:04d}"}


def generate(path: Path, rows: int, seed: int = 7) -> None:
    """A CRM export: one person per row, national phone numbers, day-first dates, a few blanks."""
    rnd = random.Random(seed)
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(COLUMNS)
        for i in range(1, rows + 1):
            first, last = rnd.choice(FIRST), rnd.choice(LAST)
            city, country, postcode = rnd.choice(CITIES)
            n = rnd.randrange(10_000)
            pattern = PHONES[country]
            phone = pattern.format(n // 100, n % 100) if country == "FR" else pattern.format(n)
            email = f"{first}.{last}.{i}@example.com".lower().replace(" ", "").replace("'", "")
            writer.writerow([f"C{i:08d}", first, last, email if rnd.random() < 0.9 else "",
                             phone if rnd.random() < 0.8 else "",
                             f"{rnd.randint(1, 28):02d}/{rnd.randint(1, 12):02d}/"
                             f"{rnd.randint(1940, 2005)}",
                             f"{rnd.randint(1, 200)} High Street", postcode, city, country,
                             rnd.choice(("gold", "silver", "bronze", ""))])


def rss_mb() -> float:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 1e6


def baseline(csv_path: Path, db_path: Path, batch_size: int) -> tuple[float, float]:
    """csv.reader + sqlite3.executemany of the same rows, in the same batch size: rows/s and
    the CPU seconds it took (the machine may be shared: CPU time is the steadier figure)."""
    conn = sqlite3.connect(db_path, isolation_level=None)
    for pragma in ("journal_mode=WAL", "synchronous=FULL", "foreign_keys=ON",
                   "cache_size=-32000"):
        conn.execute(f"PRAGMA {pragma}")
    conn.execute(f"CREATE TABLE rows (line_no INTEGER PRIMARY KEY, {', '.join(COLUMNS)})")
    marks = ", ".join("?" * (len(COLUMNS) + 1))
    sql = f"INSERT INTO rows VALUES ({marks})"  # noqa: S608 - placeholders only
    started, cpu_started = time.perf_counter(), time.process_time()
    count = 0
    with csv_path.open(newline="", encoding="utf-8") as fh:
        reader = csv.reader(fh)
        next(reader)
        batch: list[list[str]] = []
        for line_no, row in enumerate(reader, start=2):
            batch.append([line_no, *row])
            if len(batch) >= batch_size:
                conn.execute("BEGIN")
                conn.executemany(sql, batch)
                conn.execute("COMMIT")
                count += len(batch)
                batch = []
        if batch:
            conn.execute("BEGIN")
            conn.executemany(sql, batch)
            conn.execute("COMMIT")
            count += len(batch)
    elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu_started
    conn.close()
    return count / elapsed, cpu


PER_ROW_TABLES = ("source_records", "source_profiles", "import_rejections", "import_flags")
FEW_ROWS = frozenset({"import_rejections", "import_flags"})  # read all at once


def _copy_statements(source: sqlite3.Connection, table: str) -> tuple[str, str]:
    """SELECT every column of `table` in id order, and the INSERT of what it returns."""
    names = ", ".join(r[1] for r in source.execute(f"PRAGMA table_info({table})"))
    marks = ", ".join("?" * len(names.split(", ")))
    return (f"SELECT {names} FROM {table} ORDER BY id",  # noqa: S608 - catalogue names
            f"INSERT INTO {table} ({names}) VALUES ({marks})")  # noqa: S608


def floor(done: Path, before: Path, batch_size: int) -> dict[str, float]:
    """The rows of the tables an import writes per row, copied from `done` into `before` (the
    same database before the import) with plain executemany, `batch_size` file rows per
    transaction, with Accord's pragmas. Only the writing is timed; reading them back is not."""
    from accord.core.db import _sqlite_pragmas
    from accord.core.settings import get_settings

    conn = sqlite3.connect(before, isolation_level=None)
    _sqlite_pragmas(get_settings().sqlite_synchronous)(conn, None)
    source = sqlite3.connect(done)
    # the run itself, which every row refers to: one row, not timed
    select, insert = _copy_statements(source, "import_runs")
    conn.executemany(insert, source.execute(select))
    readers, statements = [], []
    for table in PER_ROW_TABLES:
        select, insert = _copy_statements(source, table)
        readers.append(source.cursor().execute(select))
        statements.append(insert)
    seconds = cpu = 0.0
    rows = 0
    while True:
        # the records and profiles of one batch of file rows (rejections and flags are few)
        chunks = [reader.fetchall() if table in FEW_ROWS else reader.fetchmany(batch_size)
                  for table, reader in zip(PER_ROW_TABLES, readers, strict=True)]
        if not any(chunks):
            break
        started, cpu_started = time.perf_counter(), time.process_time()
        conn.execute("BEGIN IMMEDIATE")
        for statement, chunk in zip(statements, chunks, strict=True):
            conn.executemany(statement, chunk)
        conn.execute("COMMIT")
        seconds += time.perf_counter() - started
        cpu += time.process_time() - cpu_started
        rows += sum(map(len, chunks))
    conn.close()
    source.close()
    return {"seconds": seconds, "cpu": cpu, "rows": rows}


def cpu_seconds() -> float:
    """This process's CPU and that of its finished children (the import's reading process,
    whose processes end with the import)."""
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


class GCTimer:
    """CPU seconds spent in Python's cyclic collector while registered (gc.callbacks)."""

    def __init__(self) -> None:
        self.seconds, self.collections, self._started = 0.0, 0, 0.0

    def __call__(self, phase: str, _info: dict[str, int]) -> None:
        if phase == "start":
            self._started = time.process_time()
        else:
            self.seconds += time.process_time() - self._started
            self.collections += 1

    def __enter__(self) -> GCTimer:
        gc.callbacks.append(self)
        return self

    def __exit__(self, *_exc: object) -> None:
        gc.callbacks.remove(self)


def load() -> str:
    return ", ".join(f"{x:.2f}" for x in os.getloadavg())


def import_figure(args: argparse.Namespace, work: Path) -> None:
    csv_path = work / "people.csv"
    print(f"generating {args.rows:,} rows ...", flush=True)
    generate(csv_path, args.rows)
    size = csv_path.stat().st_size
    print(f"  {csv_path.name}: {size / 1e6:.1f} MB")

    raw = baseline(csv_path, work / "baseline.db", args.batch_size)

    os.environ["ACCORD_DATABASE_URL"] = f"sqlite:///{work / 'accord.db'}"
    from accord.access.policy import SYSTEM
    from accord.core.db import dispose_all, session_scope
    from accord.core.migrate import upgrade
    from accord.core.settings import reset_settings
    from accord.integration.imports import run_import
    from accord.integration.sources import create_source

    reset_settings()
    dispose_all()
    upgrade()
    with session_scope() as session:
        create_source(session, SYSTEM, name="crm", kind="crm", default_country="GB")
    before = work / "before.db"
    with sqlite3.connect(work / "accord.db") as conn:  # the floor's starting point
        conn.execute(f"VACUUM INTO '{before}'")

    samples: list[float] = []

    def progress(_run: object) -> None:
        samples.append(rss_mb())

    rss_before = rss_mb()
    profiler = None
    if args.profile:
        import cProfile

        # CPU time, not wall time: on a shared machine the latter charges other processes'
        # time slices to whatever function was running
        profiler = cProfile.Profile(time.process_time)
        profiler.enable()
    read_ahead = {"auto": None, "on": True, "off": False}[args.read_ahead]
    load_before = load()
    started, cpu_started = time.perf_counter(), cpu_seconds()
    with GCTimer() as collector:
        run = run_import(None, SYSTEM, "crm", csv_path, batch_size=args.batch_size,
                         progress=progress, read_ahead=read_ahead)
    elapsed, cpu = time.perf_counter() - started, cpu_seconds() - cpu_started
    load_after = load()
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e3  # before the floor's reads
    if profiler is not None:
        import pstats

        profiler.disable()
        pstats.Stats(profiler).sort_stats("cumulative").print_stats(40)
        pstats.Stats(profiler).sort_stats("tottime").print_stats(25)
    rate = run.total / elapsed
    assert run.status == "completed" and run.total == args.rows, (run.status, run.total)
    print()
    raw_rate, raw_cpu = raw
    print("| figure | rows | seconds | rows/s | CPU s | rows per CPU s | share of baseline "
          "| target |")
    print("|---|---|---|---|---|---|---|---|")
    print(f"| baseline: csv.reader + sqlite3 executemany | {args.rows:,} | "
          f"{args.rows / raw_rate:.1f} | {raw_rate:,.0f} | {raw_cpu:.1f} | "
          f"{args.rows / raw_cpu:,.0f} | 100% | |")
    verdict = "met" if rate >= 50_000 else "missed"
    print(f"| accord import (batch {args.batch_size:,}, read ahead: {args.read_ahead}) | "
          f"{run.total:,} | {elapsed:.1f} | "
          f"{rate:,.0f} | {cpu:.1f} | {run.total / cpu:,.0f} | {rate / raw_rate:.1%} | "
          f"50,000 rows/s: {verdict} |")
    low = floor(work / "accord.db", before, args.batch_size)
    print(f"| floor: the {low['rows']:,} records and profiles it stored, written with plain "
          f"sqlite3 executemany | {run.total:,} | {low['seconds']:.1f} | "
          f"{run.total / low['seconds']:,.0f} | {low['cpu']:.1f} | {run.total / low['cpu']:,.0f} "
          f"| {run.total / low['seconds'] / raw_rate:.1%} | |")
    print()
    print(f"accord import / floor: {elapsed / low['seconds']:.2f}x in wall time, "
          f"{cpu / low['cpu']:.2f}x in CPU")
    print(f"outcomes: {run.accepted:,} accepted, {run.updated:,} updated, "
          f"{run.unchanged:,} unchanged, {run.rejected:,} rejected")
    print(f"CPU per row: {cpu / run.total * 1e6:.1f} µs, of which the cyclic collector "
          f"{collector.seconds / run.total * 1e6:.1f} µs ({collector.collections:,} collections); "
          f"load average {load_before} before the import, {load_after} after")
    if samples:
        tenth = samples[max(0, len(samples) // 10 - 1)]
        print(f"resident memory: {rss_before:.0f} MB before the import, {samples[0]:.0f} MB "
              f"after the first batch, {tenth:.0f} MB at 10%, median "
              f"{statistics.median(samples):.0f} MB, {max(samples):.0f} MB max, "
              f"{samples[-1]:.0f} MB at the end "
              f"(process peak {peak:.0f} MB)")


def events_figure(args: argparse.Namespace, work: Path) -> None:
    from ingest_events import events_figure as run  # bench/ is on sys.path as the script's dir

    run(args, work)


FIGURES: dict[str, Callable[[argparse.Namespace, Path], None]] = {"import": import_figure,
                                                                   "events": events_figure}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", choices=sorted(FIGURES), action="append",
                        help="run only this figure (repeatable)")
    parser.add_argument("--rows", type=int, default=1_000_000, help="rows in the import file")
    parser.add_argument("--batch-size", type=int, default=5000,
                        help="rows per transaction (`accord import`'s default)")
    parser.add_argument("--profile", action="store_true", help="cProfile the import")
    parser.add_argument("--read-ahead", choices=("auto", "on", "off"), default="auto",
                        help="a second process reads, hashes and standardises the next batch "
                             "(`accord import --read-ahead`; default: as `accord import` decides)")
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="accord-bench-ingest-"))
    try:
        for name in args.only or list(FIGURES):
            print(f"== {name} ==")
            FIGURES[name](args, work)
    finally:
        if args.keep:
            print(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()

"""How fast does `accord demo` fill a database, compared with a raw sqlite3 executemany?

Generates N customers (default 1,000,000) with their whole history into a fresh SQLite file and
reports the generator's rows/s. Then, in the same process, inserts the very same rows with plain
`sqlite3.executemany` into a fresh file with the same schema and pragmas (rows read back
beforehand, chunk by chunk, outside the timed part), and prints the ratio. Target: the generator
reaches at least 25% of the raw insert rate.

    python bench/demo_generate.py [N] [--repeat K] [--seed S]
"""

from __future__ import annotations

import argparse
import os
import shutil
import sqlite3
import statistics
import sys
import tempfile
import time
from pathlib import Path

CHUNK = 5000


def generate_once(workdir: Path, customers: int, seed: int) -> tuple[Path, float, dict[str, int]]:
    from accord.core import db as dbmod
    from accord.core.migrate import upgrade
    from accord.core.settings import reset_settings
    from accord.demo.generator import Progress, generate

    path = workdir / f"gen-{time.monotonic_ns()}.db"
    os.environ["ACCORD_DATABASE_URL"] = f"sqlite:///{path}"
    reset_settings()
    dbmod.dispose_all()
    upgrade()
    started = time.perf_counter()
    stats = generate(customers, seed, progress=Progress())
    seconds = time.perf_counter() - started
    dbmod.dispose_all()
    return path, seconds, stats.rows


def _schema(source: Path, tables: list[str]) -> list[str]:
    with sqlite3.connect(source) as conn:
        marks = ",".join("?" * len(tables))
        return [sql for (sql,) in conn.execute(
            f"SELECT sql FROM sqlite_master WHERE tbl_name IN ({marks}) AND sql IS NOT NULL "  # noqa: S608
            "ORDER BY type DESC, name", tables)]


def raw_insert(source: Path, target: Path, tables: list[str]) -> tuple[float, int]:
    """Seconds spent in executemany + COMMIT (only) to copy `tables` row for row; and rows."""
    schema = _schema(source, tables)
    dst = sqlite3.connect(target, isolation_level=None)
    # the pragmas the generator's bulk writer uses
    for pragma in ("journal_mode=WAL", "synchronous=NORMAL", "cache_size=-262144",
                   "foreign_keys=OFF"):
        dst.execute(f"PRAGMA {pragma}")
    for sql in schema:
        dst.execute(sql)
    src = sqlite3.connect(source)
    timed, rows = 0.0, 0
    for table in tables:
        cols = [r[1] for r in src.execute(f'PRAGMA table_info("{table}")')]
        names = ", ".join(f'"{c}"' for c in cols)
        insert = f'INSERT INTO "{table}" ({names}) VALUES ({", ".join("?" * len(cols))})'  # noqa: S608
        last = 0
        while True:
            batch = src.execute(f'SELECT {names} FROM "{table}" WHERE id > ? ORDER BY id LIMIT ?',  # noqa: S608
                                (last, CHUNK * 4)).fetchall()
            if not batch:
                break
            last = batch[-1][cols.index("id")]
            started = time.perf_counter()
            dst.execute("BEGIN IMMEDIATE")
            dst.executemany(insert, batch)
            dst.execute("COMMIT")
            timed += time.perf_counter() - started
            rows += len(batch)
    src.close()
    dst.close()
    return timed, rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("customers", nargs="?", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=1, help="runs; medians are printed")
    parser.add_argument("--seed", type=int, default=42)
    args = parser.parse_args()
    os.environ.setdefault("ACCORD_ENVIRONMENT", "development")

    workdir = Path(tempfile.mkdtemp(prefix="accord-bench-gen-"))
    gen_rates, gen_seconds, raw_all, raw_cust = [], [], [], []
    rows: dict[str, int] = {}
    try:
        for run in range(args.repeat):
            print(f"run {run + 1}/{args.repeat}: generating {args.customers:,} customers ...",
                  flush=True)
            path, seconds, rows = generate_once(workdir, args.customers, args.seed)
            total = sum(rows.values())
            gen_seconds.append(seconds)
            gen_rates.append(total / seconds)
            print(f"  generator: {total:,} rows in {seconds:.1f} s = {total / seconds:,.0f} rows/s "
                  f"({args.customers / seconds:,.0f} customers/s)", flush=True)
            t_c, n_c = raw_insert(path, workdir / f"raw-c-{run}.db", ["customers"])
            raw_cust.append(n_c / t_c)
            print(f"  raw sqlite3 executemany, customers table: {n_c:,} rows in {t_c:.1f} s "
                  f"= {n_c / t_c:,.0f} rows/s", flush=True)
            tables = [t for t in rows if rows[t]]
            t_a, n_a = raw_insert(path, workdir / f"raw-a-{run}.db", tables)
            raw_all.append(n_a / t_a)
            print(f"  raw sqlite3 executemany, all generated rows: {n_a:,} rows in {t_a:.1f} s "
                  f"= {n_a / t_a:,.0f} rows/s", flush=True)
            for f in workdir.glob("*.db*"):
                f.unlink()
    finally:
        shutil.rmtree(workdir, ignore_errors=True)

    med = statistics.median
    print()
    print(f"demo generator, {args.customers:,} customers, {sum(rows.values()):,} rows "
          f"({', '.join(f'{t} {n:,}' for t, n in rows.items())})")
    label = "median of " + str(args.repeat) if args.repeat > 1 else "1 run"
    print(f"  ({label})")
    print(f"  generator wall time           {med(gen_seconds):10.1f} s")
    gen = med(gen_rates)
    print(f"  generator                     {gen:10,.0f} rows/s   (all of it: Faker pools, "
          "row building, inserts, statistics)")
    print(f"  raw executemany, same rows    {med(raw_all):10,.0f} rows/s   "
          f"generator/raw {gen / med(raw_all):6.1%}")
    print(f"  raw executemany, customers    {med(raw_cust):10,.0f} rows/s   "
          f"generator/raw {gen / med(raw_cust):6.1%}")
    print("  target: generator >= 25% of the raw insert rate")
    sys.stdout.flush()


if __name__ == "__main__":
    main()

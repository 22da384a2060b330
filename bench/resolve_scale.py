"""Identity resolution at scale: the demo's messy extracts resolved end to end, beside Splink.

    python bench/resolve_scale.py [RECORDS] [--db FILE] [--new 1000] [--keep-resolved]
                                  [--parallel auto|on|off]

Setup (not timed; kept with --db and reused): demo customers are generated into a scratch
database, written out as the messy billing / web-shop / support extracts with their ground truth,
and the first RECORDS rows of the extracts are imported into a fresh Accord database with
`accord import` — except the last `--new` web-shop rows, held back for the incremental figure.

Timed, each in its own process so that peak memory is its own:
  * accord    `resolve_all`: read the profiles, train the model, score, decide, write the golden
              customers with their lineage;
  * baseline  Splink with the same comparisons and blocking on the same records, straight from a
              data frame (train, predict, cluster) with no database;
  * floor    the rows `resolve_all` stored (golden customers, contact points, lineage, events,
              reviews, and every profile's link with its evidence), written again with plain
              sqlite3 executemany into a copy of the unresolved database, in one transaction
              with Accord's pragmas and its dropped-and-rebuilt index: what storing the result
              costs this SQLite with no Python logic at all. Baseline + floor is the least any
              resolution storing the same result could take here;
  * incremental  the held-back records imported, then `resolve_pending` on them (the job every
              import enqueues) against the resolved base.
Each part's wall and CPU seconds (all threads of its process and of the worker process a large
batch forks: CPU is steadier than wall time on a shared machine) and the load average when it
ended are printed, with pairwise precision / recall / F1 of Accord's golden ids against the
truth.
Targets: accord within 1.3x of the baseline's time and under 4 GB; incremental under 5 s.
"""

from __future__ import annotations

import argparse
import csv
import itertools
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))

SOURCES = ("billing", "webshop", "support")


def _env(db: Path) -> dict[str, str]:
    return {**os.environ, "ACCORD_DATABASE_URL": f"sqlite:///{db}",
            "ACCORD_DATA_DIR": str(db.parent)}


def setup(db: Path, records: int, new: int, work: Path) -> None:
    """Demo customers → extracts → the first RECORDS rows imported, `new` web-shop rows held."""
    demo = work / "demo.db"
    extracts = work / "extracts"
    customers = max(100, int(records / 1.8) + 1)  # the extracts hold ~1.84 rows per customer
    print(f"setup: {customers:,} demo customers -> extracts -> {records:,} source records",
          flush=True)
    env = _env(demo)
    subprocess.run([sys.executable, "-m", "accord.cli", "demo", "--customers", str(customers),
                    "--no-serve", "--extracts", str(extracts)], check=True, env=env,
                   stdout=subprocess.DEVNULL)
    budget = records
    held = work / "held_back.csv"
    for name in SOURCES:
        path = extracts / f"{name}.csv"
        with path.open(newline="", encoding="utf-8") as fh:
            rows = list(csv.reader(fh))
        header, body = rows[0], rows[1:1 + budget]
        budget -= len(body)
        keep = body[:-new] if name == "webshop" and new else body
        with (work / f"{name}.in.csv").open("w", newline="", encoding="utf-8") as fh:
            csv.writer(fh).writerows([header, *keep])
        if name == "webshop" and new:
            with held.open("w", newline="", encoding="utf-8") as fh:
                csv.writer(fh).writerows([header, *body[-new:]])
    env = _env(db)
    for name in SOURCES:
        started = time.perf_counter()
        subprocess.run([sys.executable, "-m", "accord.cli", "import",
                        str(work / f"{name}.in.csv"), "--source", name, "--batch-size", "5000"],
                       check=True, env=env, stdout=subprocess.DEVNULL)
        print(f"  imported {name} in {time.perf_counter() - started:.0f} s", flush=True)
    (db.parent / f"{db.name}.truth.csv").write_bytes((extracts / "truth.csv").read_bytes())
    (db.parent / f"{db.name}.held.csv").write_bytes(held.read_bytes())


# --- the timed parts, each run in a child process --------------------------------------------


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _accord() -> dict[str, float]:
    from accord.core.db import session_scope
    from accord.integration import resolution
    from accord.integration.resolution import resolve_all

    mode = os.environ.get("BENCH_PARALLEL", "auto")
    if mode == "on":  # the second process whatever the machine's load
        resolution.IDLE_CPU_MIN = 0.0
    elif mode == "off":
        resolution.PARALLEL_MIN_PROFILES = sys.maxsize
    started, cpu, workers = time.perf_counter(), time.process_time(), _children_cpu()
    with session_scope() as session:
        result = resolve_all(session)
    # the batch's second process (golden records planned while this one writes) counts too
    worker_cpu = _children_cpu() - workers
    return {"seconds": time.perf_counter() - started,
            "cpu": time.process_time() - cpu + worker_cpu, "worker_cpu": worker_cpu,
            "profiles": result.profiles, "customers": result.new_customers,
            "reviews": result.reviews}


def _baseline() -> dict[str, float]:
    from accord.core.db import session_scope
    from accord.integration import matching
    from accord.integration.resolution import profile_frame
    from accord.integration.resolution import thresholds as bounds

    with session_scope(write=False) as session:
        # the same records as a plain data frame, read outside the timed part
        records = profile_frame(session)[["unique_id", "source", *matching.MATCH_COLUMNS]]
    upper, lower = bounds()
    started, cpu = time.perf_counter(), time.process_time()
    model = matching.train(records)
    pairs = matching.predict(model, records, threshold=lower)
    clusters = matching.cluster(pairs, records["unique_id"].tolist(), threshold=upper)
    return {"seconds": time.perf_counter() - started, "cpu": time.process_time() - cpu,
            "profiles": len(records), "customers": len(set(clusters.values()))}


def _incremental() -> dict[str, float]:
    from accord.access.policy import SYSTEM
    from accord.core.db import session_scope
    from accord.integration.imports import run_import
    from accord.integration.resolution import resolve_pending
    from accord.models import SourceProfile

    held = Path(os.environ["BENCH_HELD"])
    run_import(None, SYSTEM, "webshop", held)
    started, cpu = time.perf_counter(), time.process_time()
    with session_scope() as session:
        from sqlalchemy import select

        ids = list(session.scalars(select(SourceProfile.id)
                                   .where(SourceProfile.customer_id.is_(None))))
        result = resolve_pending(session, SYSTEM, ids)
    return {"seconds": time.perf_counter() - started, "cpu": time.process_time() - cpu,
            "profiles": result.profiles, "customers": result.new_customers,
            "links": result.auto_links}


def _quality(db: Path, resolved: Path) -> dict[str, float]:
    from accord.core.db import session_scope
    from accord.integration.resolution import export_golden

    truth: dict[tuple[str, str], str] = {}
    with (db.parent / f"{db.name}.truth.csv").open(newline="", encoding="utf-8") as fh:
        for row in csv.DictReader(fh):
            truth[(row["source"], row["external_id"])] = row["person_id"]
    os.environ["ACCORD_DATABASE_URL"] = f"sqlite:///{resolved}"
    with session_scope(write=False) as session:
        golden = {(r["source"], r["external_id"]): r["golden_id"]
                  for r in export_golden(session)}
    truth = {k: v for k, v in truth.items() if k in golden}

    def pairs(assignment: dict[tuple[str, str], object]) -> set[frozenset[tuple[str, str]]]:
        groups: dict[object, list[tuple[str, str]]] = {}
        for key, group in assignment.items():
            groups.setdefault(group, []).append(key)
        return {frozenset(p) for members in groups.values()
                for p in itertools.combinations(members, 2)}

    found, true = pairs(golden), pairs(truth)
    hits = len(found & true)
    precision = hits / len(found) if found else 1.0
    recall = hits / len(true) if true else 1.0
    f1 = 2 * precision * recall / (precision + recall) if hits else 0.0
    return {"precision": precision, "recall": recall, "f1": f1}


def _floor() -> dict[str, float]:
    import shutil
    import sqlite3

    from accord.core.db import _sqlite_pragmas
    from accord.core.settings import get_settings
    from accord.integration.resolution import BULK_CACHE_KIB
    from accord.models import Base

    resolved = os.environ["ACCORD_DATABASE_URL"].removeprefix("sqlite:///")
    unresolved = Path(os.environ["BENCH_UNRESOLVED"])
    scratch = unresolved.with_name(unresolved.name + ".floor")
    for suffix in ("", "-wal", "-shm"):  # not timed
        if Path(f"{unresolved}{suffix}").exists():
            shutil.copyfile(f"{unresolved}{suffix}", f"{scratch}{suffix}")
    try:
        conn = sqlite3.connect(scratch, isolation_level=None)
        _sqlite_pragmas(get_settings().sqlite_synchronous)(conn, None)
        conn.execute(f"PRAGMA cache_size=-{BULK_CACHE_KIB}")
        conn.execute(f"ATTACH DATABASE '{resolved}' AS done")
        # what the resolution added (rows past each table's end) and changed (profiles' links),
        # read into memory before the clock starts
        added: list[tuple[str, list[str], list[tuple[Any, ...]]]] = []
        for table in Base.metadata.sorted_tables:  # parents before children
            names = [c.name for c in table.columns]
            query = (f'SELECT {", ".join(names)} FROM done."{table.name}" WHERE rowid > '  # noqa: S608 - the model's names
                     f'(SELECT coalesce(max(rowid), 0) FROM main."{table.name}")')
            rows = conn.execute(query).fetchall()
            if rows:
                added.append((table.name, names, rows))
        links = conn.execute(
            "SELECT customer_id, link_method, match_probability, link_evidence, linked_at, id "
            "FROM done.source_profiles WHERE customer_id IS NOT NULL").fetchall()
        conn.execute("DETACH DATABASE done")
        started, cpu = time.perf_counter(), time.process_time()
        conn.execute("BEGIN IMMEDIATE")
        for name, names, rows in added:
            statement = (f'INSERT INTO "{name}" ({", ".join(names)}) '  # noqa: S608 - the model's names
                         f'VALUES ({", ".join("?" * len(names))})')
            for at in range(0, len(rows), 20_000):
                conn.executemany(statement, rows[at:at + 20_000])
        # as the batch does (`golden.bulk_indexes`): links written, then the index built once
        conn.execute("DROP INDEX ix_source_profiles_customer_id")
        for at in range(0, len(links), 20_000):
            conn.executemany(
                "UPDATE source_profiles SET customer_id = ?, link_method = ?, "
                "match_probability = ?, link_evidence = ?, linked_at = ? WHERE id = ?",
                links[at:at + 20_000])
        conn.execute("CREATE INDEX ix_source_profiles_customer_id "
                     "ON source_profiles (customer_id)")
        conn.execute("COMMIT")
        seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
        conn.close()
    finally:
        for suffix in ("", "-wal", "-shm"):
            Path(f"{scratch}{suffix}").unlink(missing_ok=True)
    customers = next((len(rows) for name, _, rows in added if name == "customers"), 0)
    return {"seconds": seconds, "cpu": cpu, "profiles": len(links), "customers": customers,
            "rows": sum(len(rows) for _, _, rows in added) + len(links)}


PARTS = {"accord": _accord, "baseline": _baseline, "floor": _floor,
         "incremental": _incremental}


def child(part: str) -> None:
    out = PARTS[part]()
    out["peak_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    # a forked worker's resident set: mostly pages it still shares with its parent
    out["worker_peak_mb"] = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    print("RESULT " + json.dumps(out))


def run_part(part: str, db: Path, held: Path, parallel: str = "auto",
             unresolved: Path | None = None) -> dict[str, float]:
    env = {**_env(db), "BENCH_HELD": str(held), "BENCH_PARALLEL": parallel,
           "BENCH_UNRESOLVED": str(unresolved or "")}
    proc = subprocess.run([sys.executable, __file__, "--child", part], env=env,
                          capture_output=True, text=True, check=False)
    line = next((x for x in proc.stdout.splitlines() if x.startswith("RESULT ")), None)
    if proc.returncode or line is None:
        sys.exit(f"{part} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    # the machine may be shared: the load average over the part's last minute goes with it
    return {**json.loads(line[len("RESULT "):]), "load": os.getloadavg()[0]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("records", nargs="?", type=int, default=1_000_000)
    parser.add_argument("--db", type=Path, help="keep the prepared database here and reuse it")
    parser.add_argument("--new", type=int, default=1000, help="records for the incremental run")
    parser.add_argument("--keep-resolved", action="store_true",
                        help="keep the resolved database (FILE.resolved) for inspection")
    parser.add_argument("--parallel", choices=("auto", "on", "off"), default="auto",
                        help="accord's second process: when a CPU is idle (auto), always, never")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child)
        return
    with tempfile.TemporaryDirectory(prefix="accord-resolve-") as tmp:
        work = Path(tmp)
        db = (args.db or work / "accord.db").resolve()
        fresh = db.with_name(db.name + ".resolved")
        if not db.exists():
            setup(db, args.records, args.new, work)
        # every run starts from the same unresolved database
        for suffix in ("", "-wal", "-shm"):
            src = Path(f"{db}{suffix}")
            if src.exists():
                Path(f"{fresh}{suffix}").write_bytes(src.read_bytes())
        held = db.parent / f"{db.name}.held.csv"
        baseline = run_part("baseline", fresh, held)
        accord = run_part("accord", fresh, held, args.parallel)
        floor = run_part("floor", fresh, held, unresolved=db)
        quality = _quality(db, fresh)
        incremental = run_part("incremental", fresh, held)
        for suffix in ("", "-wal", "-shm"):
            if not args.keep_resolved:
                Path(f"{fresh}{suffix}").unlink(missing_ok=True)
    ratio = accord["seconds"] / baseline["seconds"]
    print()
    print("| run | records | seconds | CPU s | records/s | peak MB | load | golden customers "
          "| target |")
    print("|---|---|---|---|---|---|---|---|---|")

    def cells(r: dict[str, float]) -> str:
        return (f"{r['profiles']:,} | {r['seconds']:.2f} | {r['cpu']:.1f} | "
                f"{r['profiles'] / r['seconds']:,.0f} | {r['peak_mb']:,.0f} | {r['load']:.1f}")

    print(f"| baseline: Splink, same settings, from a data frame | {cells(baseline)} | "
          f"{baseline['customers']:,} | |")
    verdict = "met" if ratio <= 1.3 and accord["peak_mb"] < 4096 else "missed"
    print(f"| accord resolve (database to golden records) | {cells(accord)} | "
          f"{accord['customers']:,} | {ratio:.2f}x of baseline "
          f"({accord['cpu'] / baseline['cpu']:.2f}x in CPU), < 4 GB (≤ 1.3x): {verdict} |")
    if accord.get("worker_cpu"):
        print(f"| (accord's second process: {accord['worker_cpu']:.1f} CPU s of the above, "
              f"peak {accord['worker_peak_mb']:,.0f} MB resident, mostly shared with its "
              f"parent) | | | | | | | | |")
    print(f"| floor: the rows accord stored ({floor['rows']:,}), written with plain sqlite3 "
          f"executemany | {cells(floor)} | {floor['customers']:,} | |")
    inc = "met" if incremental["seconds"] < 5 else "missed"
    print(f"| incremental: new records vs the resolved base | {cells(incremental)} | "
          f"+{incremental['customers']:,} | < 5 s: {inc} |")
    least = baseline["seconds"] + floor["seconds"]
    print()
    print(f"baseline + floor: {least:.1f} s ({least / baseline['seconds']:.2f}x of the baseline), "
          f"the least a resolution storing the same result could take here; accord "
          f"{accord['seconds'] / least:.2f}x of it")
    print(f"quality of accord's golden ids against the truth: precision "
          f"{quality['precision']:.4f}, recall {quality['recall']:.4f}, F1 {quality['f1']:.4f}")


if __name__ == "__main__":
    main()

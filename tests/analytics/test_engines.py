"""The same KPI definitions give the same values on DuckDB and on Spark (one Spark run)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from accord.analytics import kpis
from accord.analytics.snapshot import take_snapshot
from accord.core import db as dbmod
from accord.core.migrate import upgrade
from tests.analytics.kpi_data import AS_OF, add_feedback, seed
from tests.conftest import IN_CI


def test_duckdb_and_spark_agree(tmp_path: Path) -> None:
    if shutil.which("java") is None and not os.environ.get("JAVA_HOME"):
        message = "Spark needs a Java runtime (java not found)"
        if IN_CI:
            pytest.fail(message + " (CI=true: the Spark test must run)", pytrace=False)
        pytest.skip(message)
    url = f"sqlite:///{tmp_path / 'engines.db'}"
    upgrade(url)
    session = dbmod.session_factory(url)()
    try:
        ids = seed(session)
        snap = take_snapshot(session.connection(), tmp_path / "snapshots")
    finally:
        session.close()
        dbmod.get_engine(url).dispose()
    add_feedback(snap.path, ids["C3"])
    results = {engine: kpis.compute(snap.path, AS_OF, engine=engine, months=6)
               for engine in ("duckdb", "spark")}
    duck = {r.key(): r for r in results["duckdb"]}
    spark = {r.key(): r for r in results["spark"]}
    assert set(duck) == set(spark)
    assert {k[0] for k in duck} == set(kpis.KPI_KEYS)  # every KPI has data here
    for key, d in duck.items():
        s = spark[key]
        for field in ("value", "numerator", "denominator", "ci_low", "ci_high"):
            a, b = getattr(d, field), getattr(s, field)
            assert (a is None) == (b is None), (key, field, a, b)
            if a is not None:
                assert a == pytest.approx(b, rel=1e-9, abs=1e-9), (key, field)

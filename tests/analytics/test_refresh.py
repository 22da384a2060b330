"""The refresh (snapshot → queries → bulk write-back → run record), its command and schedule."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select
from typer.testing import CliRunner

from accord.analytics import kpis
from accord.analytics.service import refresh_kpis
from accord.core import jobs
from accord.core.db import session_scope
from accord.core.settings import reset_settings
from accord.models import AnalyticsRun, Customer, CustomerScore, Job, KpiValue
from tests.analytics.kpi_data import seed


@pytest.fixture
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("ACCORD_DATA_DIR", str(tmp_path))
    reset_settings()
    yield tmp_path
    monkeypatch.delenv("ACCORD_DATA_DIR")
    reset_settings()


def test_refresh_writes_the_values_back_and_records_the_run(session, data_dir: Path) -> None:
    seed(session)
    run = refresh_kpis(session, "duckdb")
    session.commit()
    assert run.status == "done" and run.finished_at is not None and run.engine == "duckdb"
    assert run.figures["rows"]["orders"] == 10
    assert set(run.figures["no_data"]) >= {"nps", "csat", "first_response_hours"}
    stored = session.scalar(select(func.count()).select_from(KpiValue)
                            .where(KpiValue.run_id == run.id))
    assert stored == run.figures["values"] > 0
    # the values equal a direct computation over the run's own snapshot
    direct = kpis.compute(Path(run.snapshot), run.started_at.date(), engine="duckdb")
    assert len(direct) == stored
    second = refresh_kpis(session, "duckdb")
    session.commit()
    assert second.id > run.id
    assert len(list((data_dir / "snapshots").iterdir())) <= 2  # older snapshots pruned


def test_periodic_jobs_enqueue_once_per_slot(session, monkeypatch: pytest.MonkeyPatch) -> None:
    import accord.analytics.tasks  # noqa: F401 - registers the handler and its schedule

    monkeypatch.setattr(jobs, "PERIODIC", {"analytics.refresh": lambda: timedelta(minutes=60)})
    now = datetime(2026, 1, 1, 10, 5, tzinfo=UTC)
    assert jobs.schedule_periodic(session, now) == 1
    assert jobs.schedule_periodic(session, now + timedelta(minutes=30)) == 0  # same slot
    assert jobs.schedule_periodic(session, now + timedelta(minutes=60)) == 1
    monkeypatch.setattr(jobs, "PERIODIC", {"analytics.refresh": lambda: None})
    assert jobs.schedule_periodic(session, now + timedelta(hours=5)) == 0  # switched off
    queued = session.scalars(select(Job).order_by(Job.id)).all()
    assert [j.kind for j in queued] == ["analytics.refresh", "analytics.refresh"]
    # each runs at the next interval boundary, not when a worker happens to start
    assert [j.run_at for j in queued] == [datetime(2026, 1, 1, 11, tzinfo=UTC),
                                          datetime(2026, 1, 1, 12, tzinfo=UTC)]


def test_the_worker_runs_the_refresh_job(db: str, session, data_dir: Path,
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    from accord.analytics import tasks

    # registered on import; set again in case another test reset the registry since
    monkeypatch.setitem(jobs.HANDLERS, tasks.REFRESH, tasks.refresh)
    seed(session)
    with session_scope(db) as s:
        jobs.enqueue(s, "analytics.refresh", {"engine": "duckdb"})
    assert jobs.run_one(db)
    with session_scope(db) as s:
        job = s.scalars(select(Job)).one()
        assert job.status == "done", job.last_error
        assert s.scalars(select(AnalyticsRun.status)).all() == ["done"]
        # the same job scores every customer that is not merged into another
        scored = set(s.scalars(select(CustomerScore.customer_id)))
        assert scored and scored == set(s.scalars(select(Customer.id).where(
            Customer.merged_into_id.is_(None))))


def test_interval_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    from accord.analytics.tasks import refresh_interval

    monkeypatch.setenv("ACCORD_ANALYTICS_REFRESH_MINUTES", "90")
    reset_settings()
    assert refresh_interval() == timedelta(minutes=90)
    monkeypatch.setenv("ACCORD_ANALYTICS_REFRESH_MINUTES", "0")
    reset_settings()
    assert refresh_interval() is None
    monkeypatch.delenv("ACCORD_ANALYTICS_REFRESH_MINUTES")
    reset_settings()


def test_run_command(db: str, session, data_dir: Path) -> None:
    from accord.cli import app

    seed(session)
    result = CliRunner().invoke(app, ["analytics", "run", "--engine", "duckdb"])
    assert result.exit_code == 0, result.output
    assert "KPI values" in result.output
    assert "scores" in result.output and "customers" in result.output
    bad = CliRunner().invoke(app, ["analytics", "run", "--engine", "oracle"])
    assert bad.exit_code == 2
    assert "--engine" in bad.stderr

"""Pipelines and their ordered stages: the one write path (policy `sales_config`, audit, events).

A stage's `outcome` decides the status of the deals in it (open, won, lost), so it can change
only while no deal is in the stage, and a pipeline always keeps at least one open stage (new
deals start in the first one). A stage that deals are in, or that the stage history of a deal
points to, cannot be deleted: the history is what the historical forecast reads.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import func, select
from sqlalchemy.orm import Session, selectinload

from accord.access import audit
from accord.access.policy import SYSTEM, Principal, can
from accord.access.service import require
from accord.core.clock import utcnow
from accord.core.errors import Conflict, Forbidden, NotFound, ValidationProblem
from accord.core.events import emit
from accord.models import Deal, DealStageChange, Pipeline, PipelineStage
from accord.sales.deals_schemas import (
    PipelineCreate,
    PipelineUpdate,
    StageCreate,
    StageOrder,
    StageUpdate,
)

RESOURCE = "sales_config"
AUDIT_PIPELINES = "pipelines"
AUDIT_STAGES = "pipeline_stages"

# (name, kind, [(stage, probability, outcome), ...]) created by `ensure_default_pipelines`.
DEFAULT_PIPELINES: tuple[tuple[str, str, tuple[tuple[str, int, str], ...]], ...] = (
    ("New business", "new_business", (
        ("Qualification", 10, "open"),
        ("Needs analysis", 25, "open"),
        ("Proposal", 50, "open"),
        ("Negotiation", 75, "open"),
        ("Closed won", 100, "won"),
        ("Closed lost", 0, "lost"),
    )),
    ("Upsell and renewal", "upsell", (
        ("Opportunity identified", 20, "open"),
        ("Offer sent", 50, "open"),
        ("Commitment", 80, "open"),
        ("Closed won", 100, "won"),
        ("Closed lost", 0, "lost"),
    )),
)


def may_read(principal: Principal) -> bool:
    """Stage names and probabilities are needed by everyone who works with deals."""
    return can(principal, RESOURCE, "read") or can(principal, "deals", "read")


def _require_read(principal: Principal) -> None:
    if not may_read(principal):
        raise Forbidden("your role may not read pipelines")


def list_pipelines(session: Session, principal: Principal,
                   active_only: bool = False) -> list[Pipeline]:
    _require_read(principal)
    stmt = select(Pipeline).options(selectinload(Pipeline.stages)).order_by(
        Pipeline.position, Pipeline.id)
    if active_only:
        stmt = stmt.where(Pipeline.active.is_(True))
    return list(session.execute(stmt).scalars())


def get_pipeline(session: Session, principal: Principal, pipeline_id: int,
                 action: str = "read") -> Pipeline:
    _require_read(principal)
    if action != "read":
        require(principal, RESOURCE, action)
    pipeline = session.get(Pipeline, pipeline_id, options=[selectinload(Pipeline.stages)])
    if pipeline is None:
        raise NotFound(f"pipeline {pipeline_id} does not exist")
    return pipeline


def get_stage(session: Session, principal: Principal, pipeline: Pipeline,
              stage_id: int) -> PipelineStage:
    stage = next((s for s in pipeline.stages if s.id == stage_id), None)
    if stage is None:
        raise NotFound(f"stage {stage_id} does not exist in pipeline {pipeline.id}")
    return stage


def first_open_stage(pipeline: Pipeline) -> PipelineStage:
    stage = next((s for s in pipeline.stages if s.outcome == "open"), None)
    if stage is None:  # kept impossible by the rules below; a clear error if data says otherwise
        raise Conflict(f"pipeline {pipeline.id} has no open stage", field="stage_id")
    return stage


def _name_free(session: Session, name: str, exclude_id: int | None = None) -> None:
    stmt = select(Pipeline.id).where(Pipeline.name == name)
    if exclude_id is not None:
        stmt = stmt.where(Pipeline.id != exclude_id)
    if session.execute(stmt).first():
        raise Conflict(f"a pipeline named {name!r} already exists", field="name")


def _stage_names_unique(names: Sequence[str], field: str) -> None:
    seen: set[str] = set()
    for name in names:
        key = name.casefold()
        if key in seen:
            raise Conflict(f"two stages are named {name!r}", field=field)
        seen.add(key)


def _touch(pipeline: Pipeline) -> None:
    """A change to the stages is a change of the pipeline: its version moves on (If-Match)."""
    pipeline.updated_at = utcnow()


def create_pipeline(session: Session, principal: Principal, data: PipelineCreate) -> Pipeline:
    require(principal, RESOURCE, "create")
    _name_free(session, data.name)
    _stage_names_unique([s.name for s in data.stages], "stages")
    if not any(s.outcome == "open" for s in data.stages):
        raise ValidationProblem("a pipeline needs at least one open stage", field="stages")
    pipeline = Pipeline(name=data.name, kind=data.kind, position=data.position,
                        active=data.active,
                        stages=[PipelineStage(name=s.name, probability=s.probability,
                                              outcome=s.outcome, position=i)
                                for i, s in enumerate(data.stages)])
    session.add(pipeline)
    session.flush()
    audit.record(session, principal, "create", AUDIT_PIPELINES, pipeline.id,
                 data.model_dump(exclude_unset=True).keys())
    emit(session, "pipeline.created", "pipeline", pipeline.id,
         {"name": pipeline.name, "stages": [s.id for s in pipeline.stages]}, principal.user_id)
    return pipeline


def update_pipeline(session: Session, principal: Principal, pipeline: Pipeline,
                    data: PipelineUpdate) -> Pipeline:
    require(principal, RESOURCE, "update")
    changes = data.model_dump(exclude_unset=True)
    if "name" in changes and changes["name"] != pipeline.name:
        _name_free(session, changes["name"], pipeline.id)
    changed = [k for k, v in changes.items() if getattr(pipeline, k) != v]
    if not changed:
        return pipeline
    for key in changed:
        setattr(pipeline, key, changes[key])
    session.flush()
    audit.record(session, principal, "update", AUDIT_PIPELINES, pipeline.id, changed)
    emit(session, "pipeline.updated", "pipeline", pipeline.id, {"fields": sorted(changed)},
         principal.user_id)
    return pipeline


def _deals_in(session: Session, stage_ids: Sequence[int]) -> int:
    if not stage_ids:
        return 0
    return int(session.execute(
        select(func.count()).select_from(Deal).where(Deal.stage_id.in_(stage_ids))).scalar_one())


def _history_in(session: Session, stage_ids: Sequence[int]) -> bool:
    return session.execute(select(DealStageChange.id).where(
        DealStageChange.to_stage_id.in_(stage_ids) | DealStageChange.from_stage_id.in_(stage_ids)
    ).limit(1)).first() is not None


def delete_pipeline(session: Session, principal: Principal, pipeline: Pipeline) -> None:
    require(principal, RESOURCE, "delete")
    if _deals_in(session, [s.id for s in pipeline.stages]) or session.execute(
            select(Deal.id).where(Deal.pipeline_id == pipeline.id).limit(1)).first():
        raise Conflict("the pipeline has deals; deactivate it instead (active: false)")
    audit.record(session, principal, "delete", AUDIT_PIPELINES, pipeline.id, (),
                 {"name": pipeline.name})
    emit(session, "pipeline.deleted", "pipeline", pipeline.id, {"name": pipeline.name},
         principal.user_id)
    session.delete(pipeline)
    session.flush()


# --- stages ------------------------------------------------------------------------------------

def _renumber(stages: Sequence[PipelineStage]) -> None:
    for i, stage in enumerate(stages):
        if stage.position != i:
            stage.position = i


def create_stage(session: Session, principal: Principal, pipeline: Pipeline,
                 data: StageCreate) -> PipelineStage:
    require(principal, RESOURCE, "update")
    _stage_names_unique([*(s.name for s in pipeline.stages), data.name], "name")
    stages = list(pipeline.stages)
    at = len(stages) if data.position is None else min(data.position, len(stages))
    stage = PipelineStage(name=data.name, probability=data.probability, outcome=data.outcome,
                          position=at)
    stages.insert(at, stage)
    pipeline.stages.append(stage)
    _renumber(stages)
    _touch(pipeline)
    session.flush()
    session.refresh(pipeline, ["stages"])
    audit.record(session, principal, "create", AUDIT_STAGES, stage.id,
                 data.model_dump(exclude_unset=True).keys(), {"pipeline_id": pipeline.id})
    emit(session, "pipeline.updated", "pipeline", pipeline.id,
         {"stage_created": stage.id}, principal.user_id)
    return stage


def update_stage(session: Session, principal: Principal, pipeline: Pipeline,
                 stage: PipelineStage, data: StageUpdate) -> PipelineStage:
    require(principal, RESOURCE, "update")
    changes = data.model_dump(exclude_unset=True)
    changed = [k for k, v in changes.items() if getattr(stage, k) != v]
    if not changed:
        return stage
    if "name" in changed:
        _stage_names_unique([*(s.name for s in pipeline.stages if s is not stage),
                             changes["name"]], "name")
    if "outcome" in changed:
        if _deals_in(session, [stage.id]):
            raise Conflict("deals are in this stage: its outcome decides their status, so it "
                           "cannot change while they are there", field="outcome")
        if changes["outcome"] != "open" and not any(
                s.outcome == "open" for s in pipeline.stages if s is not stage):
            raise Conflict("a pipeline needs at least one open stage", field="outcome")
    for key in changed:
        setattr(stage, key, changes[key])
    _touch(pipeline)
    session.flush()
    audit.record(session, principal, "update", AUDIT_STAGES, stage.id, changed,
                 {"pipeline_id": pipeline.id})
    emit(session, "pipeline.updated", "pipeline", pipeline.id,
         {"stage_updated": stage.id, "fields": sorted(changed)}, principal.user_id)
    return stage


def reorder_stages(session: Session, principal: Principal, pipeline: Pipeline,
                   data: StageOrder) -> Pipeline:
    require(principal, RESOURCE, "update")
    current = {s.id: s for s in pipeline.stages}
    if sorted(data.stage_ids) != sorted(current):
        raise ValidationProblem("stage_ids must list every stage of the pipeline exactly once",
                                field="stage_ids")
    before = [s.id for s in pipeline.stages]
    if before == list(data.stage_ids):
        return pipeline
    _renumber([current[i] for i in data.stage_ids])
    _touch(pipeline)
    session.flush()
    session.refresh(pipeline, ["stages"])
    audit.record(session, principal, "update", AUDIT_PIPELINES, pipeline.id, ["stages.position"],
                 {"order": list(data.stage_ids)})
    emit(session, "pipeline.updated", "pipeline", pipeline.id,
         {"stage_order": list(data.stage_ids)}, principal.user_id)
    return pipeline


def delete_stage(session: Session, principal: Principal, pipeline: Pipeline,
                 stage: PipelineStage) -> None:
    require(principal, RESOURCE, "update")
    if _deals_in(session, [stage.id]):
        raise Conflict("deals are in this stage; move them to another stage first")
    if _history_in(session, [stage.id]):
        raise Conflict("deals have passed through this stage and their history points to it; "
                       "it is kept for the forecast")
    if stage.outcome == "open" and not any(
            s.outcome == "open" for s in pipeline.stages if s is not stage):
        raise Conflict("a pipeline needs at least one open stage")
    audit.record(session, principal, "delete", AUDIT_STAGES, stage.id, (),
                 {"pipeline_id": pipeline.id, "name": stage.name})
    pipeline.stages.remove(stage)
    _renumber(list(pipeline.stages))
    _touch(pipeline)
    session.flush()
    session.refresh(pipeline, ["stages"])
    emit(session, "pipeline.updated", "pipeline", pipeline.id, {"stage_deleted": stage.id},
         principal.user_id)


# --- defaults ----------------------------------------------------------------------------------

def ensure_default_pipelines(session: Session) -> list[Pipeline]:
    """Create "New business" and "Upsell and renewal" when there is no pipeline at all (the
    demo, a fresh install, tests). Returns every pipeline, in board order; never commits."""
    if session.execute(select(Pipeline.id).limit(1)).first() is None:
        for position, (name, kind, stages) in enumerate(DEFAULT_PIPELINES):
            create_pipeline(session, SYSTEM, PipelineCreate(
                name=name, kind=kind, position=position,  # type: ignore[arg-type]
                stages=[{"name": n, "probability": p, "outcome": o}  # type: ignore[misc]
                        for n, p, o in stages]))
    return list_pipelines(session, SYSTEM)

"""The generic half of every authorisation matrix (TRUST.md, items 1 and 2).

A resource's matrix module declares only what is its own: the resource name, its record actions
(and which policy right a non-CRUD action needs, e.g. `move` → `update`), how to seed one record
for an owner, and how to send each request. Everything else lives here, written once:

- the expected HTTP status, derived from `accord.access.policy` and never written by hand: not
  readable → 404 (no existence oracle), readable but not allowed → 403, allowed → 2xx;
- the world: an actor in team alpha, a teammate in alpha and an outsider in beta, one record each;
- the check that a refused request is a problem+json, changes nothing (data, outbox, the audit
  chain's data rows) and is itself audited as `denied`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from accord.access.policy import ROLES, Principal, can, record_in_scope, scope_for
from tests.access.helpers import assert_problem, audit_actions

RELATIONS = ("own", "team", "other")
# Reassignment has one rule (`accord.access.service.check_reassignment`): it needs the update
# right at `team` or `all` scope, so an `own`-scoped role cannot give records away.
REASSIGN_SCOPES = ("team", "all")


@dataclass(frozen=True)
class World:
    """The acting user, the owner of each relation's record, and each relation's record id."""

    actor: Any
    owners: dict[str, Any]
    records: dict[str, int]


def build_world(
    make_actor: Callable[..., Any], role: str, seed: Callable[[Any, str], int]
) -> World:
    """`seed(owner, relation)` creates one record owned by `owner` (and its team) → its id."""
    actor = make_actor(role, team="alpha")
    mate = make_actor("sales", team="alpha")
    outsider = make_actor("sales", team="beta")
    owners = {"own": actor, "team": mate, "other": outsider}
    return World(actor, owners, {rel: seed(owner, rel) for rel, owner in owners.items()})


@dataclass(frozen=True)
class Outcome:
    """One checked request: what the policy expected, what came back, the snapshot before it."""

    expected: int
    response: Any
    before: dict[str, Any]


@dataclass(frozen=True)
class Matrix:
    """One resource's matrix. `rights` names the policy right an action needs when it is not the
    action's own name (`status`/`move`/`complete` → `update`); `snapshot(url)` returns every row
    a refused request on this resource must leave unchanged."""

    resource: str
    record_actions: tuple[str, ...]
    snapshot: Callable[[str], dict[str, Any]]
    rights: Mapping[str, str] = field(default_factory=dict)

    def in_scope(self, p: Principal, action: str, owner_id: int, team_id: int | None) -> bool:
        return record_in_scope(p, scope_for(p, self.resource, action), owner_id, team_id)

    def expected_status(self, p: Principal, action: str, owner_id: int, team_id: int | None) -> int:
        """The policy's answer for one request on one record."""
        if not self.in_scope(p, "read", owner_id, team_id):
            return 404
        if action == "assign":
            allowed = scope_for(p, self.resource, "update") in REASSIGN_SCOPES and self.in_scope(
                p, "update", owner_id, team_id
            )
            return 200 if allowed else 403
        if not self.in_scope(p, self.rights.get(action, action), owner_id, team_id):
            return 403
        return 204 if action == "delete" else 200

    def outcomes(self) -> set[int]:
        """Every status the matrix expects over all roles, actions and relations (so a test can
        show it is not vacuous)."""
        found = set()
        for role in ROLES:
            p = Principal(user_id=1, email="x", role=role, team_id=1)
            for action in self.record_actions:
                for owner_id, team_id in ((1, 1), (2, 1), (3, 2)):
                    found.add(self.expected_status(p, action, owner_id, team_id))
        return found

    def visible(self, world: World) -> set[int]:
        """The world's records the actor may read."""
        p = world.actor.principal
        return {
            rid
            for rel, rid in world.records.items()
            if self.in_scope(p, "read", world.owners[rel].id, world.owners[rel].team_id)
        }

    def assert_refused(
        self,
        db: str,
        response: Any,
        status: int,
        before: dict[str, Any],
        record_id: int | None,
        context: tuple[Any, ...] = (),
    ) -> None:
        """A refusal is a problem+json, changes nothing, and a 403 is audited as `denied` (of
        this record, or of this resource when nothing was addressed, as for a create)."""
        assert_problem(response, status)
        assert self.snapshot(db) == before, context
        if status == 403:
            last = audit_actions(db)[-1]
            if record_id is None:
                assert last[:2] == ("denied", self.resource), last
            else:
                assert last == ("denied", self.resource, str(record_id)), last

    def check_record(
        self, db: str, world: World, action: str, relation: str, send: Callable[[int], Any]
    ) -> Outcome:
        """`send(record_id)` issues `action` on the relation's record; its status must be the
        policy's, and a refusal must change nothing."""
        owner, rid = world.owners[relation], world.records[relation]
        want = self.expected_status(world.actor.principal, action, owner.id, owner.team_id)
        before = self.snapshot(db)
        r = send(rid)
        role = world.actor.role
        assert r.status_code == want, (role, action, relation, r.status_code, r.text)
        if want >= 400:
            self.assert_refused(db, r, want, before, rid, (role, action, relation))
        return Outcome(want, r, before)

    def check_record_action(
        self, db: str, world: World, action: str, send: Callable[[int], Any]
    ) -> None:
        for relation in RELATIONS:
            self.check_record(db, world, action, relation, send)

    def check_create(self, db: str, actor: Any, send: Callable[[], Any]) -> None:
        """Allowed: 201, owned by the actor and the actor's team. Refused: 403, nothing changed,
        the denial audited."""
        before = self.snapshot(db)
        r = send()
        if can(actor.principal, self.resource, "create"):
            assert r.status_code == 201, r.text
            assert (r.json()["owner_id"], r.json()["team_id"]) == (actor.id, actor.team_id)
        else:
            self.assert_refused(db, r, 403, before, None)

    def check_listing(self, world: World, response: Any, ids_of: Callable[[Any], set[int]]) -> None:
        """Without the read right: 403. With it: exactly the world's records in read scope."""
        if not can(world.actor.principal, self.resource, "read"):
            assert_problem(response, 403)
            return
        assert response.status_code == 200, response.text
        assert ids_of(response.json()) == self.visible(world)

"""The one policy layer: role → resource/action grants with a record scope → field rules.

Deny by default: a role has exactly the grants listed here. Record scopes are `own` (the
record's owner is the acting user), `team` (owned by the user or by the user's team) and `all`.
Records without an owner (interactions, orders, contacts' e-mails ...) take their scope from the
customer or account they belong to.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Literal

from sqlalchemy import ColumnElement, false, or_, true

Scope = Literal["own", "team", "all"]
ROLES = ("admin", "manager", "sales", "support", "marketing", "analyst", "privacy_officer")
ACTIONS = ("read", "create", "update", "delete", "export")
RESOURCES = (
    "customers",
    "accounts",
    "contacts",
    "interactions",
    "products",
    "orders",
    "users",
    "teams",
    "custom_fields",
    "audit",
    "sources",
    "imports",
    "identity",
    "analytics",  # KPI series (aggregates) read; create = enter marketing spend
    "leads",
    "deals",  # deals and their forecasts (a forecast sums only the deals the reader may see)
    "activities",
    "sales_config",  # pipelines and stages, lead forms, assignment rules, lead scoring
    "tickets",  # tickets, their messages, attachments and SLA timers (owner: assignee)
    "knowledge",  # knowledge-base articles and categories (internal and public)
    "surveys",  # NPS/CSAT invitations, responses and schedules
    "service_config",  # SLA policies, business calendars, routing rules, agents, canned replies
)
SCOPE_RANK = {"own": 0, "team": 1, "all": 2}

_CRUD = ("read", "create", "update", "delete")
_CUSTOMER_DATA = ("customers", "accounts", "contacts", "interactions", "orders")
_SALES_DATA = ("leads", "deals", "activities")


def _grant(
    resources: Iterable[str], actions: Iterable[str], scope: Scope
) -> dict[str, dict[str, Scope]]:
    return {r: {a: scope for a in actions} for r in resources}


def _merge(*parts: dict[str, dict[str, Scope]]) -> dict[str, dict[str, Scope]]:
    out: dict[str, dict[str, Scope]] = {}
    for part in parts:
        for resource, actions in part.items():
            out.setdefault(resource, {}).update(actions)
    return out


GRANTS: dict[str, dict[str, dict[str, Scope]]] = {
    "admin": _grant(RESOURCES, ACTIONS, "all"),
    "manager": _merge(
        _grant(_CUSTOMER_DATA, ("read", "create", "update", "delete", "export"), "team"),
        _grant(("products", "users", "teams", "custom_fields"), ("read",), "all"),
        # data stewardship: review queue decisions, merge and unmerge, imports
        _grant(("sources",), ("read",), "all"),
        _grant(("imports",), ("read", "create"), "all"),
        _grant(("identity",), ("read", "update"), "all"),
        _grant(("analytics",), ("read",), "all"),
        # sales managers run their teams' pipelines and tune routing and stages
        _grant(_SALES_DATA, ("read", "create", "update", "delete", "export"), "team"),
        _grant(("sales_config",), ("read", "create", "update"), "all"),
        # service managers run their teams' queues, escalations, SLAs and knowledge base
        _grant(("tickets",), ("read", "create", "update", "delete", "export"), "team"),
        _grant(("knowledge",), ("read", "create", "update", "delete"), "all"),
        _grant(("surveys",), ("read", "create", "update"), "all"),
        _grant(("service_config",), ("read", "create", "update", "delete"), "all"),
    ),
    "sales": _merge(
        _grant(_CUSTOMER_DATA, ("read",), "team"),
        _grant(_CUSTOMER_DATA, ("create",), "team"),
        _grant(_CUSTOMER_DATA, ("update",), "own"),
        _grant(("products", "teams", "custom_fields"), ("read",), "all"),
        # own and team's leads and deals; changes only to one's own
        _grant(_SALES_DATA, ("read", "create"), "team"),
        _grant(_SALES_DATA, ("update",), "own"),
        _grant(("activities",), ("delete",), "own"),
        _grant(("sales_config",), ("read",), "all"),
        # account owners see their customers' support history and read the knowledge base
        _grant(("tickets",), ("read",), "team"),
        _grant(("knowledge",), ("read",), "all"),
        _grant(("surveys",), ("read",), "team"),
    ),
    "support": _merge(
        _grant(_CUSTOMER_DATA, ("read",), "all"),
        _grant(("customers", "interactions"), ("create", "update"), "all"),
        _grant(("products", "teams", "custom_fields"), ("read",), "all"),
        # the agent sees a customer's open deals and logs calls and tasks on the customer
        _grant(("deals",), ("read",), "all"),
        _grant(("activities",), ("read", "create"), "all"),
        _grant(("activities",), ("update",), "own"),
        # agents work every queue (a ticket may reach anyone by escalation); they write articles
        _grant(("tickets",), ("read", "create", "update"), "all"),
        _grant(("knowledge",), ("read", "create", "update"), "all"),
        _grant(("surveys",), ("read",), "team"),
        _grant(("service_config",), ("read",), "all"),
    ),
    "marketing": _merge(
        _grant(_CUSTOMER_DATA, ("read",), "all"),
        _grant(("interactions",), ("create",), "all"),
        _grant(("products", "custom_fields"), ("read",), "all"),
        _grant(("products",), ("create", "update"), "all"),
        _grant(("sources",), ("read",), "all"),
        _grant(("imports",), ("read", "create"), "all"),
        _grant(("analytics",), ("read", "create"), "all"),
        # marketing captures and nurtures leads and runs the web forms
        _grant(("leads",), ("read", "create", "update"), "all"),
        _grant(("deals",), ("read",), "all"),
        _grant(("sales_config",), ("read", "create", "update"), "all"),
        _grant(("knowledge",), ("read",), "all"),
        _grant(("surveys",), ("read", "create", "update"), "all"),
    ),
    "analyst": _merge(
        _grant((*_CUSTOMER_DATA, "products", "custom_fields", "teams"), ("read",), "all"),
        _grant(("sources", "imports", "identity"), ("read",), "all"),
        _grant(("analytics",), ("read", "create"), "all"),
        _grant((*_SALES_DATA, "sales_config"), ("read",), "all"),
        _grant(("tickets", "knowledge", "surveys", "service_config"), ("read",), "all"),
    ),
    "privacy_officer": _merge(
        _grant((*_CUSTOMER_DATA, "products", "custom_fields", "teams", "users"), ("read",), "all"),
        _grant(_CUSTOMER_DATA, ("export",), "all"),
        _grant(_SALES_DATA, ("read", "export"), "all"),
        _grant(("tickets", "surveys"), ("read", "export"), "all"),
        _grant(("audit",), ("read",), "all"),
    ),
}

# Who sees predicted money and churn risk (privacy_officer: everything held about a person).
_SCORE_ROLES = frozenset({"admin", "manager", "sales", "marketing", "analyst", "privacy_officer"})

# Field rules: which roles may see (and so filter, sort, search and export on) a sensitive field.
SENSITIVE_FIELDS: dict[str, dict[str, frozenset[str]]] = {
    "customers": {
        "date_of_birth": frozenset({"admin", "privacy_officer", "manager"}),
        "national_id": frozenset({"admin", "privacy_officer"}),
        "notes": frozenset({"admin", "privacy_officer", "manager", "sales"}),
    },
    "contacts": {},
    # Scores on the 360 page (`accord.analytics.scoring_service`): everyone who may read the
    # customer sees the RFM segment, value tier and the "at risk and valuable" flag (they steer
    # the conversation); predicted money and the churn model's output are commercial profiling,
    # kept to the roles that act on them commercially (not support, which serves every customer
    # alike).
    "customer_scores": {
        "clv_12m": _SCORE_ROLES,
        "expected_purchases_12m": _SCORE_ROLES,
        "p_alive": _SCORE_ROLES,
        "churn_risk": _SCORE_ROLES,
        "churn_reasons": _SCORE_ROLES,
    },
}
# Custom fields flagged `sensitive` by an admin follow this rule.
SENSITIVE_CUSTOM_FIELD_ROLES = frozenset({"admin", "privacy_officer", "manager"})

# Token scopes: `<resource>:read`, `<resource>:write` (create/update/delete),
# `<resource>:export`, `*`.
SCOPE_ACTIONS = {"read": ("read",), "write": ("create", "update", "delete"), "export": ("export",)}


@dataclass(frozen=True)
class Principal:
    """Who is acting: derived only from the session cookie or the bearer token."""

    user_id: int | None
    email: str
    role: str
    team_id: int | None = None
    scopes: frozenset[str] | None = None  # None: a full interactive session
    via: Literal["session", "token", "system"] = "session"
    extra: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)

    @property
    def label(self) -> str:
        return self.email

    @property
    def key(self) -> str:
        return f"user:{self.user_id}" if self.user_id is not None else f"system:{self.email}"


SYSTEM = Principal(user_id=None, email="system", role="admin", via="system")


def _token_allows(principal: Principal, resource: str, action: str) -> bool:
    if principal.scopes is None or "*" in principal.scopes:
        return True
    for scope in principal.scopes:
        res, _, kind = scope.partition(":")
        if res in (resource, "*") and action in SCOPE_ACTIONS.get(kind, ()):
            return True
    return False


def scope_for(principal: Principal, resource: str, action: str) -> Scope | None:
    """The widest record scope the principal has for this action, or None (denied)."""
    if not _token_allows(principal, resource, action):
        return None
    return GRANTS.get(principal.role, {}).get(resource, {}).get(action)


def can(principal: Principal, resource: str, action: str) -> bool:
    return scope_for(principal, resource, action) is not None


def record_in_scope(
    principal: Principal, scope: Scope | None, owner_id: int | None, team_id: int | None
) -> bool:
    if scope is None:
        return False
    if scope == "all":
        return True
    if principal.user_id is not None and owner_id == principal.user_id:
        return True
    return scope == "team" and team_id is not None and team_id == principal.team_id


def scope_shape(principal: Principal, scope: Scope | None) -> str:
    """Which condition `scope_clause` writes: "none" (no row), "all", "own" (the principal's
    rows) or "team" (its own rows and its team's); for statements prepared once per shape."""
    if scope is None:
        return "none"
    if scope == "all":
        return "all"
    return "team" if scope == "team" and principal.team_id is not None else "own"


def scope_clause(
    principal: Principal, scope: Scope | None, owner_col: Any, team_col: Any
) -> ColumnElement[bool]:
    """The same rule as `record_in_scope`, as SQL for list queries."""
    shape = scope_shape(principal, scope)
    if shape == "none":
        return false()
    if shape == "all":
        return true()
    own = owner_col == principal.user_id if principal.user_id is not None else false()
    return or_(own, team_col == principal.team_id) if shape == "team" else own


def visible_sensitive_fields(principal: Principal, resource: str) -> set[str]:
    rules = SENSITIVE_FIELDS.get(resource, {})
    return {name for name, roles in rules.items() if principal.role in roles}


def hidden_fields(principal: Principal, resource: str) -> set[str]:
    rules = SENSITIVE_FIELDS.get(resource, {})
    return {name for name, roles in rules.items() if principal.role not in roles}


def can_see_sensitive_custom(principal: Principal) -> bool:
    return principal.role in SENSITIVE_CUSTOM_FIELD_ROLES


def permission_matrix() -> list[dict[str, Any]]:
    """The grants as rows, for the roles admin page and the generated authorisation tests."""
    rows = []
    for role in ROLES:
        for resource in RESOURCES:
            for action in ACTIONS:
                rows.append(
                    {
                        "role": role,
                        "resource": resource,
                        "action": action,
                        "scope": GRANTS.get(role, {}).get(resource, {}).get(action),
                    }
                )
    return rows

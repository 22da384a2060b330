"""Users, teams, API tokens and login sessions: the one write path for access data."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import bindparam, select
from sqlalchemy.orm import Session

from accord.access import audit
from accord.access.passwords import digest, hash_password, new_secret, verify_password
from accord.access.policy import Principal, can, record_in_scope, scope_for
from accord.access.schemas import TeamIn, TeamUpdate, TokenCreate, UserCreate, UserUpdate
from accord.core.clock import utcnow
from accord.core.errors import Conflict, Forbidden, NotFound, ValidationProblem
from accord.core.events import emit
from accord.core.prepared import Prepared
from accord.models import ApiToken, Team, User, WebSession

TOKEN_PREFIX = "acc_"


def require(principal: Principal, resource: str, action: str) -> None:
    if not can(principal, resource, action):
        raise Forbidden(f"your role may not {action} {resource}")


def check_reassignment(session: Session, principal: Principal, resource: str, record: Any,
                       changes: dict[str, Any]) -> None:
    """Ownership changes are their own action, the same for every owned record (customers,
    leads, deals ...): only roles that update every record in their scope (team or all) may
    reassign, a team-scoped role only within its team, and only to an active user and an
    existing team. An `own`-scoped role could otherwise give records away and back."""
    scope = scope_for(principal, resource, "update")
    if scope not in ("team", "all") or not record_in_scope(principal, scope, record.owner_id,
                                                           record.team_id):
        raise Forbidden(f"your role may not reassign {resource}")
    owner_id = changes.get("owner_id")
    if owner_id is not None:
        user = session.get(User, owner_id)
        if user is None or not user.is_active:
            raise ValidationProblem(f"user {owner_id} does not exist", field="owner_id")
    team_id = changes.get("team_id")
    if team_id is not None and session.get(Team, team_id) is None:
        raise ValidationProblem(f"team {team_id} does not exist", field="team_id")
    if scope == "team" and "team_id" in changes and team_id != principal.team_id:
        raise Forbidden(f"you may only assign {resource} within your team", field="team_id")


# --- users -------------------------------------------------------------------------------------


def get_user(session: Session, principal: Principal, user_id: int) -> User:
    if principal.user_id != user_id:
        require(principal, "users", "read")
    user = session.get(User, user_id)
    if user is None:
        raise NotFound(f"user {user_id} does not exist")
    return user


def list_users(session: Session, principal: Principal) -> list[User]:
    require(principal, "users", "read")
    return list(session.execute(select(User).order_by(User.full_name)).scalars())


def _check_team(session: Session, team_id: int | None) -> None:
    if team_id is not None and session.get(Team, team_id) is None:
        raise ValidationProblem(f"team {team_id} does not exist", field="team_id")


def create_user(session: Session, principal: Principal, data: UserCreate) -> User:
    require(principal, "users", "create")
    email = data.email.lower()
    if session.execute(select(User.id).where(User.email == email)).first():
        raise Conflict(f"a user with e-mail {email} already exists", field="email")
    _check_team(session, data.team_id)
    user = User(
        email=email,
        full_name=data.full_name,
        password_hash=hash_password(data.password),
        role=data.role,
        team_id=data.team_id,
        locale=data.locale,
    )
    session.add(user)
    session.flush()
    audit.record(
        session, principal, "create", "users", user.id, ["email", "full_name", "role", "team_id"]
    )
    emit(session, "user.created", "user", user.id, {"role": user.role}, principal.user_id)
    return user


def update_user(session: Session, principal: Principal, user: User, data: UserUpdate) -> User:
    require(principal, "users", "update")
    changes = data.model_dump(exclude_unset=True)
    if user.id == principal.user_id and (
        changes.get("is_active") is False or changes.get("role", user.role) != user.role
    ):
        raise Conflict(
            "you cannot deactivate yourself or change your own role",
            field="is_active" if "is_active" in changes else "role",
        )
    if "team_id" in changes:
        _check_team(session, changes["team_id"])
    if "password" in changes:
        user.password_hash = hash_password(changes.pop("password"))
        changes["password"] = "***"
    for key, value in changes.items():
        if key != "password":
            setattr(user, key, value)
    session.flush()
    audit.record(session, principal, "update", "users", user.id, list(changes))
    emit(session, "user.updated", "user", user.id, {"fields": sorted(changes)}, principal.user_id)
    return user


def delete_user(session: Session, principal: Principal, user: User) -> None:
    """Users are deactivated, not removed: the audit trail and ownership keep pointing at them."""
    require(principal, "users", "delete")
    if user.id == principal.user_id:
        raise Conflict("you cannot deactivate yourself")
    user.is_active = False
    session.flush()
    audit.record(session, principal, "deactivate", "users", user.id, ["is_active"])


def authenticate(session: Session, email: str, password: str) -> User | None:
    user = session.execute(select(User).where(User.email == email.strip().lower())).scalar()
    ok = verify_password(user.password_hash if user else None, password)
    if not ok or user is None or not user.is_active:
        return None
    return user


def principal_for(user: User, scopes: list[str] | None = None, via: str = "session") -> Principal:
    return Principal(
        user_id=user.id,
        email=user.email,
        role=user.role,
        team_id=user.team_id,
        scopes=frozenset(scopes) if scopes is not None else None,
        via=via,
    )  # type: ignore[arg-type]


# --- teams -------------------------------------------------------------------------------------


def list_teams(session: Session, principal: Principal) -> list[Team]:
    require(principal, "teams", "read")
    return list(session.execute(select(Team).order_by(Team.name)).scalars())


def get_team(session: Session, principal: Principal, team_id: int) -> Team:
    require(principal, "teams", "read")
    team = session.get(Team, team_id)
    if team is None:
        raise NotFound(f"team {team_id} does not exist")
    return team


def create_team(session: Session, principal: Principal, data: TeamIn) -> Team:
    require(principal, "teams", "create")
    if session.execute(select(Team.id).where(Team.name == data.name)).first():
        raise Conflict(f"a team named {data.name!r} already exists", field="name")
    team = Team(name=data.name, description=data.description)
    session.add(team)
    session.flush()
    audit.record(session, principal, "create", "teams", team.id, ["name", "description"])
    return team


def update_team(session: Session, principal: Principal, team: Team, data: TeamUpdate) -> Team:
    require(principal, "teams", "update")
    changes = data.model_dump(exclude_unset=True)
    for key, value in changes.items():
        setattr(team, key, value)
    session.flush()
    audit.record(session, principal, "update", "teams", team.id, list(changes))
    return team


def delete_team(session: Session, principal: Principal, team: Team) -> None:
    require(principal, "teams", "delete")
    audit.record(session, principal, "delete", "teams", team.id)
    session.delete(team)
    session.flush()


# --- API tokens --------------------------------------------------------------------------------


def create_token(session: Session, principal: Principal, data: TokenCreate) -> tuple[ApiToken, str]:
    """Any user may mint tokens for themself; a token never exceeds its owner's role."""
    if principal.user_id is None or principal.via == "token":
        raise Forbidden("tokens are created from an interactive session or the CLI")
    secret = TOKEN_PREFIX + new_secret(32)
    token = ApiToken(
        user_id=principal.user_id,
        name=data.name,
        prefix=secret[:10],
        token_hash=digest(secret),
        scopes=data.scopes,
        expires_at=utcnow() + timedelta(days=data.expires_in_days)
        if data.expires_in_days
        else None,
    )
    session.add(token)
    session.flush()
    audit.record(session, principal, "create", "api_tokens", token.id, ["name", "scopes"])
    return token, secret


def list_tokens(session: Session, principal: Principal) -> list[ApiToken]:
    return list(
        session.execute(
            select(ApiToken).where(ApiToken.user_id == principal.user_id).order_by(ApiToken.id)
        ).scalars()
    )


def revoke_token(session: Session, principal: Principal, token_id: int) -> None:
    token = session.get(ApiToken, token_id)
    if token is None or (
        token.user_id != principal.user_id and not can(principal, "users", "update")
    ):
        raise NotFound(f"token {token_id} does not exist")
    token.revoked_at = utcnow()
    audit.record(session, principal, "revoke", "api_tokens", token.id)


_TOKENS = ApiToken.__table__.c
_USERS = User.__table__.c
# Every API request runs this: a Core select of the columns needed, built once (the ORM
# entity load of a token and a user cost ~0.35 ms CPU more per request).
_TOKEN_PRINCIPAL = Prepared(
    select(_TOKENS.scopes, _TOKENS.revoked_at, _TOKENS.expires_at, _USERS.id, _USERS.email,
           _USERS.role, _USERS.team_id, _USERS.is_active)
    .join_from(ApiToken.__table__, User.__table__, _USERS.id == _TOKENS.user_id)
    .where(_TOKENS.token_hash == bindparam("token_hash"))
)


def principal_from_token(session: Session, secret: str) -> Principal | None:
    if not secret.startswith(TOKEN_PREFIX) or len(secret) > 200:
        return None
    row = _TOKEN_PRINCIPAL.first(session.connection(), {"token_hash": digest(secret)})
    if row is None:
        return None
    now = utcnow()
    if row.revoked_at or (row.expires_at and row.expires_at <= now) or not row.is_active:
        return None
    return Principal(user_id=row.id, email=row.email, role=row.role, team_id=row.team_id,
                     scopes=frozenset(row.scopes), via="token")


# --- web sessions ------------------------------------------------------------------------------


def start_session(session: Session, user: User, hours: int) -> tuple[str, str]:
    """Returns (cookie value, CSRF token); only the cookie's hash is stored."""
    cookie = new_secret(32)
    csrf = new_secret(24)
    session.add(
        WebSession(
            id=digest(cookie),
            user_id=user.id,
            csrf_token=csrf,
            expires_at=utcnow() + timedelta(hours=hours),
        )
    )
    user.last_login_at = utcnow()
    audit.record(session, principal_for(user), "login", "users", user.id)
    return cookie, csrf


def session_principal(session: Session, cookie: str) -> tuple[Principal, str] | None:
    if not cookie or len(cookie) > 200:
        return None
    row = session.execute(
        select(WebSession, User)
        .join(User, User.id == WebSession.user_id)
        .where(WebSession.id == digest(cookie))
    ).first()
    if row is None:
        return None
    web, user = row
    if web.expires_at <= utcnow() or not user.is_active:
        return None
    return principal_for(user), web.csrf_token


def end_session(session: Session, cookie: str) -> None:
    web = session.get(WebSession, digest(cookie))
    if web is not None:
        session.delete(web)


def user_dict(user: User) -> dict[str, Any]:
    return {"id": user.id, "email": user.email, "full_name": user.full_name, "role": user.role}

"""Accounts (organisations) and their contacts: the one write path (policy, audit, events).

Accounts are owned like customers (`owner_id`, `team_id`; the creator becomes the owner).
Contacts have no owner of their own: they take the record scope of their account, narrowed by
the role's `contacts` grant.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, func, select, update
from sqlalchemy.orm import Session

from accord.access import audit
from accord.access.policy import Principal, record_in_scope, scope_clause, scope_for
from accord.access.service import require
from accord.core.clock import utcnow
from accord.core.contact import InvalidValue, fold, normalize_email, normalize_phone
from accord.core.errors import Forbidden, NotFound, ValidationProblem
from accord.core.events import emit
from accord.core.query import Filter, ListParams, ListSpec, Sort, page_of, paginate
from accord.core.settings import get_settings
from accord.customers import service as customers
from accord.customers.accounts_schemas import (
    AccountCreate,
    AccountUpdate,
    ContactCreate,
    ContactUpdate,
)
from accord.models import Account, Contact
from accord.models.customer import VALUE_TIERS

ACCOUNTS = "accounts"
CONTACTS = "contacts"
# Personal fields a contact read exposes (for the audit trail of reads).
CONTACT_READ_FIELDS = ("first_name", "last_name", "job_title", "email", "phone")
_CMP = frozenset({"eq", "ne", "lt", "lte", "gt", "gte"})


# --- accounts ----------------------------------------------------------------------------------

def _name_filter(op: str, value: Any) -> ColumnElement[bool]:
    key = fold(str(value))
    if op == "eq":
        return Account.name_key == key
    return Account.name_key.startswith(key, autoescape=True)


def account_list_spec() -> ListSpec:
    return ListSpec(
        resource=ACCOUNTS,
        id_column=Account.id,
        filters={
            "id": Filter(Account.id, int, frozenset({"eq", "in", "lt", "gt"})),
            "name": Filter(_name_filter, str, frozenset({"eq", "prefix"})),
            "domain": Filter(Account.domain, str, frozenset({"eq", "in"})),
            "country": Filter(Account.country, ops=frozenset({"eq", "ne", "in", "isnull"})),
            "industry": Filter(Account.industry, ops=frozenset({"eq", "ne", "in", "isnull"})),
            "value_tier": Filter(Account.value_tier, choices=VALUE_TIERS,
                                 ops=frozenset({"eq", "ne", "in", "isnull"})),
            "owner_id": Filter(Account.owner_id, int, frozenset({"eq", "in", "isnull"})),
            "team_id": Filter(Account.team_id, int, frozenset({"eq", "in", "isnull"})),
            "created_at": Filter(Account.created_at, datetime, _CMP),
            "updated_at": Filter(Account.updated_at, datetime, _CMP),
        },
        sorts={
            "id": Sort(Account.id, int),
            "name": Sort(Account.name_key, str),
            "created_at": Sort(Account.created_at, datetime),
            "updated_at": Sort(Account.updated_at, datetime),
        },
        default_sort="name",
    )


def account_in_scope(principal: Principal, account: Account, action: str,
                     resource: str = ACCOUNTS) -> bool:
    return record_in_scope(principal, scope_for(principal, resource, action),
                           account.owner_id, account.team_id)


def list_accounts(session: Session, principal: Principal, params: ListParams
                  ) -> tuple[list[Account], str | None]:
    scope = scope_for(principal, ACCOUNTS, "read")
    if scope is None:
        raise Forbidden("your role may not read accounts")
    spec = account_list_spec()
    stmt = select(Account).where(scope_clause(principal, scope, Account.owner_id, Account.team_id))
    if params.q:
        stmt = stmt.where(_name_filter("prefix", params.q))
    rows = list(session.execute(paginate(stmt, spec, params)).scalars())
    return page_of(rows, spec, params)


def get_account(session: Session, principal: Principal, account_id: int,
                action: str = "read") -> Account:
    """404 when the caller may not read it (no existence oracle), 403 when it may not act."""
    require(principal, ACCOUNTS, "read")
    account = session.get(Account, account_id)
    if account is None or not account_in_scope(principal, account, "read"):
        raise NotFound(f"account {account_id} does not exist")
    if action != "read" and not account_in_scope(principal, account, action):
        raise Forbidden(f"your role may not {action} this account")
    return account


def _check_money(annual_revenue: object, currency: str | None) -> None:
    if annual_revenue is not None and currency is None:
        raise ValidationProblem("annual_revenue needs its ISO 4217 currency",
                                field="annual_revenue_currency")


def create_account(session: Session, principal: Principal, data: AccountCreate) -> Account:
    require(principal, ACCOUNTS, "create")
    _check_money(data.annual_revenue, data.annual_revenue_currency)
    account = Account(**data.model_dump(), name_key=fold(data.name),
                      owner_id=principal.user_id, team_id=principal.team_id)
    session.add(account)
    session.flush()
    audit.record(session, principal, "create", ACCOUNTS, account.id,
                 data.model_dump(exclude_unset=True).keys())
    emit(session, "account.created", "account", account.id,
         {"name": account.name, "owner_id": account.owner_id, "team_id": account.team_id},
         principal.user_id)
    return account


def update_account(session: Session, principal: Principal, account: Account,
                   data: AccountUpdate) -> Account:
    if not account_in_scope(principal, account, "update"):
        raise Forbidden("your role may not update this account")
    changes = data.model_dump(exclude_unset=True)
    _check_money(changes.get("annual_revenue", account.annual_revenue),
                 changes.get("annual_revenue_currency", account.annual_revenue_currency))
    changed = [k for k, v in changes.items() if getattr(account, k) != v]
    if not changed:
        return account
    for key in changed:
        setattr(account, key, changes[key])
    if "name" in changed:
        account.name_key = fold(account.name)
    session.flush()
    audit.record(session, principal, "update", ACCOUNTS, account.id, changed)
    emit(session, "account.updated", "account", account.id, {"fields": sorted(changed)},
         principal.user_id)
    return account


def delete_account(session: Session, principal: Principal, account: Account) -> None:
    """Its contacts go with it; customers linked to it keep their profile, unlinked."""
    if not account_in_scope(principal, account, "delete"):
        raise Forbidden("your role may not delete this account")
    contacts = session.execute(
        select(func.count()).select_from(Contact).where(Contact.account_id == account.id)
    ).scalar_one()
    if contacts and not account_in_scope(principal, account, "delete", CONTACTS):
        raise Forbidden("your role may not delete this account's contacts")
    audit.record(session, principal, "delete", ACCOUNTS, account.id, (), {"contacts": contacts})
    emit(session, "account.deleted", "account", account.id, {"contacts": contacts},
         principal.user_id)
    session.delete(account)
    session.flush()


# --- contacts ----------------------------------------------------------------------------------

def contact_list_spec() -> ListSpec:
    return ListSpec(
        resource=CONTACTS,
        id_column=Contact.id,
        filters={
            "id": Filter(Contact.id, int, frozenset({"eq", "in", "lt", "gt"})),
            "email": Filter(_contact_email_filter, str, frozenset({"eq", "in"})),
            "customer_id": Filter(Contact.customer_id, int, frozenset({"eq", "in", "isnull"})),
            "is_primary": Filter(Contact.is_primary, bool, frozenset({"eq"})),
            "created_at": Filter(Contact.created_at, datetime, _CMP),
        },
        sorts={
            "id": Sort(Contact.id, int),
            "last_name": Sort(Contact.last_name, str),
            "created_at": Sort(Contact.created_at, datetime),
        },
        default_sort="id",
    )


def _contact_email_filter(op: str, value: Any) -> ColumnElement[bool]:
    values = value if isinstance(value, list) else [value]
    try:
        return Contact.email.in_([normalize_email(v) for v in values])
    except InvalidValue as exc:
        raise ValidationProblem(f"invalid e-mail address: {exc}", field="email") from None


def account_for_contacts(session: Session, principal: Principal, account_id: int,
                         action: str = "read") -> Account:
    """The parent account: 404 unless its contacts are readable, 403 when readable only."""
    require(principal, CONTACTS, "read")
    if action != "read":
        require(principal, CONTACTS, action)
    account = get_account(session, principal, account_id)
    if not account_in_scope(principal, account, "read", CONTACTS):
        raise NotFound(f"account {account_id} does not exist")
    if action != "read" and not account_in_scope(principal, account, action, CONTACTS):
        raise Forbidden(f"your role may not {action} contacts of this account")
    return account


def list_contacts(session: Session, principal: Principal, account_id: int, params: ListParams
                  ) -> tuple[list[Contact], str | None]:
    account = account_for_contacts(session, principal, account_id)
    spec = contact_list_spec()
    stmt = select(Contact).where(Contact.account_id == account.id)
    rows = list(session.execute(paginate(stmt, spec, params)).scalars())
    return page_of(rows, spec, params)


def get_contact(session: Session, principal: Principal, contact_id: int,
                action: str = "read") -> Contact:
    require(principal, CONTACTS, "read")
    contact = session.get(Contact, contact_id)
    if contact is None:
        raise NotFound(f"contact {contact_id} does not exist")
    try:
        account_for_contacts(session, principal, contact.account_id, action)
    except NotFound:
        raise NotFound(f"contact {contact_id} does not exist") from None
    return contact


def _phone(account: Account, value: str | None) -> str | None:
    if value is None:
        return None
    try:
        return normalize_phone(value, account.country or get_settings().default_region)
    except InvalidValue as exc:
        raise ValidationProblem(f"phone: {exc}", field="phone") from None


def _check_customer(session: Session, principal: Principal, customer_id: int | None) -> None:
    if customer_id is None:
        return
    if not customers.customers_by_ids(session, principal, [customer_id]):
        raise ValidationProblem(f"customer {customer_id} does not exist", field="customer_id")


def _demote_other_primaries(session: Session, contact: Contact) -> list[int]:
    """One primary contact per account: the others stop being primary (and change version)."""
    others = list(session.execute(select(Contact.id).where(
        Contact.account_id == contact.account_id, Contact.id != contact.id,
        Contact.is_primary.is_(True))).scalars())
    if others:
        session.execute(update(Contact).where(Contact.id.in_(others))
                        .values(is_primary=False, version=Contact.version + 1, updated_at=utcnow())
                        .execution_options(synchronize_session="fetch"))
    return others


def create_contact(session: Session, principal: Principal, account_id: int,
                   data: ContactCreate) -> Contact:
    account = account_for_contacts(session, principal, account_id, "create")
    _check_customer(session, principal, data.customer_id)
    contact = Contact(**data.model_dump(exclude={"phone"}), phone=_phone(account, data.phone),
                      account_id=account.id)
    session.add(contact)
    session.flush()
    demoted = _demote_other_primaries(session, contact) if contact.is_primary else []
    audit.record(session, principal, "create", CONTACTS, contact.id,
                 data.model_dump(exclude_unset=True).keys(),
                 {"account_id": account.id, **({"demoted": demoted} if demoted else {})})
    emit(session, "contact.created", "contact", contact.id,
         {"account_id": account.id, "customer_id": contact.customer_id}, principal.user_id)
    return contact


def update_contact(session: Session, principal: Principal, contact: Contact,
                   data: ContactUpdate) -> Contact:
    account = account_for_contacts(session, principal, contact.account_id, "update")
    changes = data.model_dump(exclude_unset=True)
    if "phone" in changes:
        changes["phone"] = _phone(account, changes["phone"])
    if changes.get("customer_id") is not None and changes["customer_id"] != contact.customer_id:
        _check_customer(session, principal, changes["customer_id"])
    first = changes.get("first_name", contact.first_name)
    last = changes.get("last_name", contact.last_name)
    if not (first or last):
        raise ValidationProblem("a contact needs a first or last name", field="last_name")
    changed = [k for k, v in changes.items() if getattr(contact, k) != v]
    if not changed:
        return contact
    for key in changed:
        setattr(contact, key, changes[key])
    session.flush()
    demoted = []
    if "is_primary" in changed and contact.is_primary:
        demoted = _demote_other_primaries(session, contact)
    audit.record(session, principal, "update", CONTACTS, contact.id, changed,
                 {"account_id": account.id, **({"demoted": demoted} if demoted else {})})
    emit(session, "contact.updated", "contact", contact.id,
         {"account_id": account.id, "fields": sorted(changed)}, principal.user_id)
    return contact


def delete_contact(session: Session, principal: Principal, contact: Contact) -> None:
    account_for_contacts(session, principal, contact.account_id, "delete")
    audit.record(session, principal, "delete", CONTACTS, contact.id, (),
                 {"account_id": contact.account_id})
    emit(session, "contact.deleted", "contact", contact.id, {"account_id": contact.account_id},
         principal.user_id)
    session.delete(contact)
    session.flush()

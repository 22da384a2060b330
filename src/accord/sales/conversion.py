"""Lead conversion: a qualified lead becomes (or joins) a golden customer, an account and contact
where B2B, and a deal — in one audited step that is all or nothing.

Every part goes through its own domain's service (customers, accounts, deals), so each checks
its own policy; a refusal or a validation error anywhere rolls the savepoint back and leaves the
lead and everything else as they were. The lead's history follows it: its activities, consent
records and engagements are attached to the customer (engagements as timeline entries).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal

from pydantic import BaseModel, Field
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from accord.access import audit
from accord.access.policy import Principal
from accord.core.clock import utcnow
from accord.core.errors import Conflict, ValidationProblem
from accord.core.events import emit
from accord.core.validation import StrictIn
from accord.customers import accounts as accounts_service
from accord.customers import service as customers
from accord.customers.accounts_schemas import AccountCreate, ContactCreate
from accord.customers.schemas import CustomerCreate, EmailIn, PhoneIn
from accord.models import (
    Account,
    Activity,
    ConsentRecord,
    Contact,
    Customer,
    Deal,
    Interaction,
    Lead,
    LeadEngagement,
    Pipeline,
)
from accord.sales import deals
from accord.sales.deals_schemas import DealCreate
from accord.sales.scoring import FREE_MAIL_DOMAINS

RESOURCE = "leads"
# How far out the deal is expected to close, from the lead's BANT timeline.
TIMELINE_DAYS = {"now": 30, "quarter": 90, "half_year": 180, "year": 365, "unknown": 90}


class ConvertIn(StrictIn):
    """Every field optional: by default the lead's own data decide."""

    customer_id: int | None = Field(
        default=None, description="Link to this existing customer instead of the lead's match "
        "(or a new one)")
    account_id: int | None = Field(
        default=None, description="Attach to this existing account (B2B)")
    create_account: bool = Field(
        default=True, description="With a company name and no account given: find the account "
        "by the e-mail's domain or create it")
    create_deal: bool = True
    deal_name: str | None = Field(default=None, min_length=1, max_length=200)
    pipeline_id: int | None = Field(default=None, description="Default: the first active "
                                    "new-business pipeline")
    amount: Decimal | None = Field(default=None, ge=0, max_digits=15, decimal_places=2,
                                   description="Default: the lead's budget")
    currency: str | None = Field(default=None, min_length=3, max_length=3)
    expected_close_date: date | None = None


class Conversion(BaseModel):
    lead_id: int
    customer_id: int
    customer_created: bool
    account_id: int | None
    contact_id: int | None
    deal_id: int | None


@dataclass(frozen=True)
class DealDefaults:
    name: str
    amount: Decimal
    currency: str | None
    expected_close_date: date


def _domain(email: str | None) -> str | None:
    if not email or "@" not in email:
        return None
    domain = email.rsplit("@", 1)[1].lower()
    return None if domain in FREE_MAIL_DOMAINS else domain


def _customer(session: Session, principal: Principal, lead: Lead, data: ConvertIn,
              account_id: int | None) -> tuple[Customer, bool]:
    known = data.customer_id or lead.customer_id
    if known is not None:
        return customers.get_customer(session, principal, known, "read"), False
    fields = CustomerCreate(
        first_name=lead.first_name or "", last_name=lead.last_name or "",
        country=lead.country, preferred_language=lead.preferred_language,
        lifecycle_stage="evaluation", account_id=account_id,
        emails=[EmailIn(email=lead.email, kind="work", is_primary=True)] if lead.email else [],
        phones=[PhoneIn(phone=lead.phone_e164 or lead.phone, kind="work", is_primary=True)]
        if (lead.phone_e164 or lead.phone) else [])
    return customers.create_customer(session, principal, fields), True


def _account(session: Session, principal: Principal, lead: Lead, data: ConvertIn
             ) -> Account | None:
    if data.account_id is not None:
        return accounts_service.get_account(session, principal, data.account_id)
    if lead.account_id is not None:
        return accounts_service.get_account(session, principal, lead.account_id)
    if not lead.company or not data.create_account:
        return None
    domain = _domain(lead.email)
    if domain is not None:
        found = session.scalar(select(Account).where(Account.domain == domain).limit(1))
        if found is not None and accounts_service.account_in_scope(principal, found, "read"):
            return found
    return accounts_service.create_account(session, principal, AccountCreate(
        name=lead.company, domain=domain, industry=lead.industry, employees=lead.employees,
        annual_revenue=lead.annual_revenue,
        annual_revenue_currency=lead.budget_currency if lead.annual_revenue else None,
        country=lead.country))


def _contact(session: Session, principal: Principal, lead: Lead, account: Account,
             customer: Customer) -> Contact:
    existing = session.scalar(select(Contact).where(
        Contact.account_id == account.id, Contact.customer_id == customer.id).limit(1))
    if existing is not None:
        return existing
    has_primary = session.scalar(select(Contact.id).where(
        Contact.account_id == account.id, Contact.is_primary.is_(True)).limit(1))
    return accounts_service.create_contact(session, principal, account.id, ContactCreate(
        first_name=lead.first_name or "", last_name=lead.last_name or "",
        job_title=lead.job_title, email=lead.email, phone=lead.phone_e164 or lead.phone,
        is_primary=has_primary is None, customer_id=customer.id))


def _pipeline_id(session: Session, data: ConvertIn) -> int:
    if data.pipeline_id is not None:
        return data.pipeline_id
    found = session.scalar(select(Pipeline.id).where(
        Pipeline.active.is_(True), Pipeline.kind == "new_business").order_by(
        Pipeline.position, Pipeline.id).limit(1))
    if found is None:
        raise ValidationProblem("there is no active new-business pipeline; name one",
                                field="pipeline_id")
    return found


def deal_defaults(lead: Lead) -> DealDefaults:
    """What the deal gets when the caller leaves it out; the lead page prefills its convert
    form with the same values, so what a user sees is what an empty request would do."""
    label = lead.company or " ".join(p for p in (lead.first_name, lead.last_name) if p)
    return DealDefaults(
        name=f"{label or 'Lead'} – new business", amount=lead.budget or Decimal("0.00"),
        currency=lead.budget_currency,
        expected_close_date=utcnow().date() + timedelta(
            days=TIMELINE_DAYS.get(lead.timeline or "unknown", 90)))


def _deal(session: Session, principal: Principal, lead: Lead, data: ConvertIn,
          customer: Customer, account: Account | None, contact: Contact | None) -> Deal:
    defaults = deal_defaults(lead)
    currency = data.currency or defaults.currency
    if currency is None:
        raise ValidationProblem("the lead has no budget currency; send `currency`",
                                field="currency")
    close = data.expected_close_date or defaults.expected_close_date
    return deals.create_deal(session, principal, DealCreate(
        name=data.deal_name or defaults.name,
        pipeline_id=_pipeline_id(session, data),
        amount=data.amount if data.amount is not None else defaults.amount,
        currency=currency.upper(), expected_close_date=close, customer_id=customer.id,
        account_id=account.id if account else None,
        contact_id=contact.id if contact else None, lead_id=lead.id, source="lead"))


def _carry_history(session: Session, principal: Principal, lead: Lead, customer: Customer,
                   account: Account | None) -> None:
    """The lead's activities, consent proofs and engagements now belong to the customer too."""
    session.execute(update(Activity).where(Activity.lead_id == lead.id,
                                           Activity.customer_id.is_(None))
                    .values(customer_id=customer.id,
                            account_id=account.id if account else None)
                    .execution_options(synchronize_session=False))
    session.execute(update(ConsentRecord).where(ConsentRecord.lead_id == lead.id,
                                                ConsentRecord.customer_id.is_(None))
                    .values(customer_id=customer.id)
                    .execution_options(synchronize_session=False))
    for engagement in session.scalars(select(LeadEngagement).where(
            LeadEngagement.lead_id == lead.id).order_by(LeadEngagement.occurred_at)):
        session.add(Interaction(
            customer_id=customer.id, channel="web", direction="inbound", department="sales",
            occurred_at=engagement.occurred_at,
            subject=engagement.kind.replace("_", " ").capitalize(),
            meta={"lead_id": lead.id, "engagement_id": engagement.id}, source="lead",
            created_by=principal.user_id))


def convert_lead(session: Session, principal: Principal, lead: Lead,
                 data: ConvertIn) -> Conversion:
    """Convert a qualified lead; the caller has checked `If-Match` and commits."""
    if lead.status != "qualified":
        raise Conflict(f"only a qualified lead can be converted (this one is {lead.status})",
                       field="status")
    with session.begin_nested():
        account = _account(session, principal, lead, data)
        customer, created = _customer(session, principal, lead, data,
                                      account.id if account else None)
        contact = _contact(session, principal, lead, account, customer) if account else None
        deal = _deal(session, principal, lead, data, customer, account, contact) \
            if data.create_deal else None
        _carry_history(session, principal, lead, customer, account)
        now = utcnow()
        lead.status, lead.converted_at, lead.converted_by = "converted", now, principal.user_id
        lead.customer_id = customer.id
        lead.account_id = account.id if account else None
        lead.contact_id = contact.id if contact else None
        session.flush()
    result = Conversion(lead_id=lead.id, customer_id=customer.id, customer_created=created,
                        account_id=lead.account_id, contact_id=lead.contact_id,
                        deal_id=deal.id if deal else None)
    audit.record(session, principal, "convert", RESOURCE, lead.id,
                 ("status", "customer_id", "account_id", "contact_id"),
                 {"customer_id": customer.id, "customer_created": created,
                  "account_id": result.account_id, "contact_id": result.contact_id,
                  "deal_id": result.deal_id})
    emit(session, "lead.converted", "lead", lead.id,
         {"customer_id": customer.id, "account_id": result.account_id,
          "contact_id": result.contact_id, "deal_id": result.deal_id}, principal.user_id)
    return result

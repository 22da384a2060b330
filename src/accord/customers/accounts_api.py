"""REST endpoints for accounts (organisations) and their contacts: parse, call, serialise."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Header, Request, Response

from accord.access import audit
from accord.access.deps import Ctx, api_ctx
from accord.core.concurrency import etag
from accord.core.query import ListParams, ListSpec, parse_list_params
from accord.core.settings import get_settings
from accord.customers import accounts as service
from accord.customers.accounts_schemas import (
    AccountCreate,
    AccountOut,
    AccountUpdate,
    ContactCreate,
    ContactOut,
    ContactUpdate,
)

router = APIRouter()


def _params(request: Request, spec: ListSpec) -> ListParams:
    settings = get_settings()
    return parse_list_params(
        dict(request.query_params),
        spec,
        hidden=set(),
        default_limit=settings.page_size_default,
        max_limit=settings.page_size_max,
    )


# --- accounts ----------------------------------------------------------------------------------


@router.get(
    "/accounts",
    tags=["accounts"],
    summary="List accounts (organisations)",
    description="Filters: `name` (`name__prefix=acme`, accent- and case-insensitive), "
    "`domain`, `country`, `industry`, `value_tier`, `owner_id`, `team_id`, "
    "`created_at__gte=...`; `q` is a name prefix; `sort=name` (default), `id`, "
    "`created_at`, `updated_at`; keyset pagination with `cursor`.",
)
def list_accounts(request: Request, ctx: Ctx = Depends(api_ctx)) -> dict[str, Any]:
    rows, cursor = service.list_accounts(
        ctx.session, ctx.principal, _params(request, service.account_list_spec())
    )
    return {"items": [AccountOut.model_validate(a) for a in rows], "next_cursor": cursor}


@router.post(
    "/accounts",
    tags=["accounts"],
    status_code=201,
    response_model=AccountOut,
    summary="Create an account; the caller becomes its owner",
)
def create_account(body: AccountCreate, ctx: Ctx = Depends(api_ctx)) -> Response:
    return ctx.created(
        lambda: AccountOut.model_validate(service.create_account(ctx.session, ctx.principal, body)),
        body,
        headers=lambda out: {"ETag": etag(out.version), "Location": f"/api/v1/accounts/{out.id}"},
    )


@router.get("/accounts/{account_id}", tags=["accounts"], response_model=AccountOut)
def get_account(account_id: int, response: Response, ctx: Ctx = Depends(api_ctx)) -> AccountOut:
    account = service.get_account(ctx.session, ctx.principal, account_id)
    response.headers["ETag"] = etag(account.version)
    return AccountOut.model_validate(account)


@router.patch("/accounts/{account_id}", tags=["accounts"], response_model=AccountOut)
def update_account(
    account_id: int,
    body: AccountUpdate,
    response: Response,
    if_match: str | None = Header(default=None),
    ctx: Ctx = Depends(api_ctx),
) -> AccountOut:
    account = service.get_account(ctx.session, ctx.principal, account_id, "update")
    return ctx.updated(
        account,
        if_match,
        response,
        lambda: service.update_account(ctx.session, ctx.principal, account, body),
        lambda: AccountOut.model_validate(account),
    )


@router.delete(
    "/accounts/{account_id}",
    tags=["accounts"],
    status_code=204,
    summary="Delete an account and its contacts",
)
def delete_account(
    account_id: int, if_match: str | None = Header(default=None), ctx: Ctx = Depends(api_ctx)
) -> Response:
    account = service.get_account(ctx.session, ctx.principal, account_id, "delete")
    return ctx.deleted(
        account, if_match, lambda: service.delete_account(ctx.session, ctx.principal, account)
    )


# --- contacts ----------------------------------------------------------------------------------


@router.get(
    "/accounts/{account_id}/contacts",
    tags=["contacts"],
    summary="An account's contacts",
    description="Filters: `email`, `customer_id`, `is_primary`, `created_at`; "
    "`sort=id` (default), `last_name`, `created_at`; keyset pagination.",
)
def list_contacts(account_id: int, request: Request, ctx: Ctx = Depends(api_ctx)) -> dict[str, Any]:
    rows, cursor = service.list_contacts(
        ctx.session, ctx.principal, account_id, _params(request, service.contact_list_spec())
    )
    audit.record_read(
        ctx.principal,
        service.CONTACTS,
        [c.id for c in rows],
        service.CONTACT_READ_FIELDS,
        {"via": "api.list"},
    )
    return {"items": [ContactOut.model_validate(c) for c in rows], "next_cursor": cursor}


@router.post(
    "/accounts/{account_id}/contacts", tags=["contacts"], status_code=201, response_model=ContactOut
)
def create_contact(account_id: int, body: ContactCreate, ctx: Ctx = Depends(api_ctx)) -> Response:
    def run() -> ContactOut:
        contact = service.create_contact(ctx.session, ctx.principal, account_id, body)
        return ContactOut.model_validate(contact)

    return ctx.created(
        run,
        body,
        headers=lambda out: {"ETag": etag(out.version), "Location": f"/api/v1/contacts/{out.id}"},
    )


@router.get("/contacts/{contact_id}", tags=["contacts"], response_model=ContactOut)
def get_contact(contact_id: int, response: Response, ctx: Ctx = Depends(api_ctx)) -> ContactOut:
    contact = service.get_contact(ctx.session, ctx.principal, contact_id)
    out = ContactOut.model_validate(contact)
    audit.record_read(
        ctx.principal,
        service.CONTACTS,
        [contact.id],
        service.CONTACT_READ_FIELDS,
        {"via": "api.get"},
    )
    response.headers["ETag"] = etag(contact.version)
    return out


@router.patch("/contacts/{contact_id}", tags=["contacts"], response_model=ContactOut)
def update_contact(
    contact_id: int,
    body: ContactUpdate,
    response: Response,
    if_match: str | None = Header(default=None),
    ctx: Ctx = Depends(api_ctx),
) -> ContactOut:
    contact = service.get_contact(ctx.session, ctx.principal, contact_id, "update")
    return ctx.updated(
        contact,
        if_match,
        response,
        lambda: service.update_contact(ctx.session, ctx.principal, contact, body),
        lambda: ContactOut.model_validate(contact),
    )


@router.delete("/contacts/{contact_id}", tags=["contacts"], status_code=204)
def delete_contact(
    contact_id: int, if_match: str | None = Header(default=None), ctx: Ctx = Depends(api_ctx)
) -> Response:
    contact = service.get_contact(ctx.session, ctx.principal, contact_id, "delete")
    return ctx.deleted(
        contact, if_match, lambda: service.delete_contact(ctx.session, ctx.principal, contact)
    )

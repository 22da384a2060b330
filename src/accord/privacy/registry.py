"""The personal data registry: every table and column that holds personal data, declared once.

Export and erasure (the privacy domain) are driven by these declarations, and a test fails when
a model grows a personal-looking column that is not declared here. `subject` says how a row is
tied to a data subject: `customers.id` for a customer's rows, `users.id` for employees.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Erasure = Literal["delete", "anonymise", "redact_payload", "keep"]


@dataclass(frozen=True)
class PersonalTable:
    table: str
    columns: tuple[str, ...]
    subject: Literal["customer", "user", "mixed"]
    link: str  # the column pointing at the subject (or "id" for the subject table itself)
    erasure: Erasure
    why: str


REGISTRY: tuple[PersonalTable, ...] = (
    PersonalTable(
        "customers",
        (
            "title",
            "first_name",
            "last_name",
            "display_name",
            "name_key",
            "name_key_alt",
            "gender",
            "date_of_birth",
            "national_id",
            "notes",
            "preferred_language",
            "country",
        ),
        "customer",
        "id",
        "anonymise",
        "the golden profile; anonymised so orders and KPIs stay whole",
    ),
    PersonalTable(
        "customer_emails",
        ("email", "email_normalized"),
        "customer",
        "customer_id",
        "delete",
        "contact point",
    ),
    PersonalTable(
        "customer_phones", ("phone", "e164"), "customer", "customer_id", "delete", "contact point"
    ),
    PersonalTable(
        "customer_addresses",
        ("line1", "line2", "city", "region", "postcode", "country"),
        "customer",
        "customer_id",
        "delete",
        "contact point",
    ),
    PersonalTable(
        "lifecycle_changes",
        ("reason",),
        "customer",
        "customer_id",
        "keep",
        "stage history (no identifying values once the profile is anonymised)",
    ),
    PersonalTable(
        "custom_field_values",
        ("value_text", "value_number", "value_date"),
        "customer",
        "record_id",
        "delete",
        "admin-defined attributes may be personal",
    ),
    PersonalTable(
        "contacts",
        ("first_name", "last_name", "job_title", "email", "phone"),
        "customer",
        "customer_id",
        "anonymise",
        "a person at an organisation",
    ),
    PersonalTable(
        "interactions",
        ("subject", "body", "metadata"),
        "customer",
        "customer_id",
        "anonymise",
        "free text of conversations; channel/time kept for KPIs",
    ),
    PersonalTable(
        "orders",
        ("number",),
        "customer",
        "customer_id",
        "keep",
        "purchase history: amounts kept for revenue aggregates once the profile is anonymised",
    ),
    PersonalTable("users", ("email", "full_name"), "user", "id", "anonymise", "employees"),
    PersonalTable("web_sessions", ("user_id",), "user", "user_id", "delete", "login sessions"),
    PersonalTable(
        "api_tokens", ("name",), "user", "user_id", "delete", "an employee's credentials"
    ),
    PersonalTable(
        "audit_log",
        ("actor", "detail"),
        "mixed",
        "record_id",
        "keep",
        "legal record of access; holds ids and field names, never field values",
    ),
    PersonalTable(
        "outbox_events",
        ("payload",),
        "mixed",
        "aggregate_id",
        "redact_payload",
        "event payloads may carry changed values",
    ),
    PersonalTable(
        "jobs", ("payload",), "mixed", "payload", "redact_payload", "job payloads copy events"
    ),
    PersonalTable(
        "idempotency_keys",
        ("response",),
        "mixed",
        "principal",
        "redact_payload",
        "saved responses contain the created record",
    ),
)

BY_TABLE = {entry.table: entry for entry in REGISTRY}

# Column names that signal personal data; the registry test checks every model against them.
PERSONAL_HINTS = (
    "name",
    "email",
    "phone",
    "e164",
    "address",
    "line1",
    "line2",
    "city",
    "postcode",
    "birth",
    "national",
    "notes",
    "gender",
    "body",
    "subject",
    "payload",
    "response",
    "ip",
    "title",
)

"""The personal data registry: every table and column that holds personal data, declared once.

Export and erasure (the privacy domain) are driven by these declarations, and a test fails when
a model grows a personal-looking column that is not declared here. `subject` says how a row is
tied to a data subject: `customers.id` for a customer's rows, `leads.id` for a prospect not yet
(or never) a customer, `users.id` for employees.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Erasure = Literal["delete", "anonymise", "redact_payload", "keep"]


@dataclass(frozen=True)
class PersonalTable:
    table: str
    columns: tuple[str, ...]
    subject: Literal["customer", "lead", "user", "mixed"]
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
    PersonalTable(
        "source_records",
        ("payload", "subject_key", "external_id", "reason"),
        "customer",
        "external_id",
        "delete",
        "raw records as each source sent them; tied to a customer through the source profile "
        "with the same (source_id, external_id), and for events through subject_key and aliases",
    ),
    PersonalTable(
        "source_profiles",
        (
            "external_id",
            "title",
            "first_name",
            "last_name",
            "last_name_key",
            "gender",
            "date_of_birth",
            "email",
            "phone",
            "address_line1",
            "address_line2",
            "city",
            "region",
            "postcode",
            "country",
            "national_id",
            "company",
            "job_title",
            "language",
            "extra",
            "flags",
            "link_evidence",
        ),
        "customer",
        "customer_id",
        "delete",
        "standardised identity of a customer in one source",
    ),
    PersonalTable(
        "import_rejections",
        ("raw_row", "reason"),
        "mixed",
        "import_id",
        "delete",
        "rejected import rows are kept verbatim for the report",
    ),
    PersonalTable(
        "import_flags",
        ("value", "reason"),
        "mixed",
        "import_id",
        "delete",
        "values left out of a profile (flagged) are kept as written for the import report",
    ),
    PersonalTable(
        "match_reviews",
        ("fields",),
        "customer",
        "left_id",
        "delete",
        "both records' values side by side for the data steward",
    ),
    PersonalTable(
        "identity_changes",
        ("snapshot",),
        "customer",
        "customer_id",
        "redact_payload",
        "merge/unmerge snapshots hold the values they restore",
    ),
    PersonalTable(
        "identity_aliases",
        ("alias", "user_id"),
        "customer",
        "user_id",
        "delete",
        "anonymous and previous tracking ids of a person",
    ),
    PersonalTable(
        "customer_scores",
        (
            "recency_days",
            "frequency",
            "monetary",
            "rfm_r",
            "rfm_f",
            "rfm_m",
            "rfm_segment",
            "clv_12m",
            "expected_purchases_12m",
            "p_alive",
            "churn_risk",
            "churn_reasons",
            "value_tier",
            "at_risk_valuable",
        ),
        "customer",
        "customer_id",
        "delete",
        "profiling (RFM, CLV, churn risk): derived from the person's data, recomputed by "
        "`accord analytics score`; deleted on erasure, aggregates come from the orders",
    ),
    PersonalTable(
        "customer_recommendations",
        ("product_id", "score", "because_product_id_1", "because_product_id_2"),
        "customer",
        "customer_id",
        "delete",
        "profiling (suggested products and the person's purchases behind them), recomputed by "
        "`accord analytics run`; deleted on erasure",
    ),
    PersonalTable(
        "leads",
        (
            "first_name", "last_name", "email", "email_normalized", "phone", "phone_e164",
            "company", "job_title", "website", "country", "preferred_language", "notes", "need",
            "budget", "score_factors",
        ),
        "lead",
        "id",
        "delete",
        "a prospect's contact details and qualification; deleted on erasure (a converted lead's "
        "customer is erased through the customer)",
    ),
    PersonalTable(
        "lead_engagements", ("detail",), "lead", "lead_id", "delete",
        "what the prospect did (forms, downloads, sign-ups) and the submitted values",
    ),
    PersonalTable(
        "consent_records",
        ("wording", "source", "granted"),
        "mixed",
        "customer_id",
        "keep",
        "proof of consent (customer_id or lead_id); kept after erasure as the legal record that "
        "consent existed, the person's link is cut",
    ),
    PersonalTable(
        "deals",
        ("name", "lost_note", "competitors"),
        "customer",
        "customer_id",
        "anonymise",
        "a sale to the person; the name and notes are anonymised, amounts stay for forecasts",
    ),
    PersonalTable(
        "activities",
        ("subject", "body", "outcome"),
        "mixed",
        "customer_id",
        "anonymise",
        "calls, meetings, tasks and notes about a customer (customer_id) or a lead (lead_id)",
    ),
    PersonalTable(
        "notifications", ("title", "body"), "user", "user_id", "delete",
        "an employee's in-app messages; may name the customer concerned",
    ),
    PersonalTable(
        "tickets",
        ("subject", "requester_email", "requester_name", "tags"),
        "customer",
        "customer_id",
        "anonymise",
        "the person's support requests; subject and requester anonymised, timings and SLA "
        "outcomes stay for service KPIs",
    ),
    PersonalTable(
        "ticket_messages",
        ("from_address", "subject", "body_text", "body_html", "sentiment", "sentiment_label"),
        "customer",
        "customer_id",
        "delete",
        "what the person wrote to support and what agents answered, with its sentiment",
    ),
    PersonalTable(
        "ticket_attachments", ("filename", "storage_key"), "customer", "customer_id", "delete",
        "files the person sent or was sent; erasure deletes the stored file too",
    ),
    PersonalTable(
        "assistant_conversations", ("email", "name"), "mixed", "customer_id", "delete",
        "self-service conversations; anonymous until the person gives an e-mail or is known",
    ),
    PersonalTable(
        "assistant_turns", ("text",), "mixed", "conversation_id", "delete",
        "the questions the person asked the assistant (deleted with the conversation)",
    ),
    PersonalTable(
        "survey_invitations", ("email",), "customer", "customer_id", "delete",
        "who was asked for feedback, and where",
    ),
    PersonalTable(
        "survey_responses",
        ("score", "comment"),
        "customer",
        "customer_id",
        "anonymise",
        "the person's NPS/CSAT answer; the comment and the link are removed, the score stays "
        "for aggregates",
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

# Not personal, so not declared: `kpi_values` and `analytics_runs` (aggregates over many
# customers), `marketing_spend` (amounts per channel; `created_by` is the employee's user id).
# `product_associations` (bought together: support, confidence and lift over all orders) is an
# aggregate too: no person's data, it stays after an erasure.
# Sales configuration (`lead_forms`, `assignment_rules`, `pipelines`, `pipeline_stages`,
# `lead_score_models`) and `deal_lines`, `deal_stage_changes` (products, amounts, stage ids)
# hold no person's data.
# Service configuration (`business_calendars`, `sla_policies`, `sla_targets`, `routing_rules`,
# `service_agents`, `canned_replies`, `survey_schedules`) and the knowledge base (`kb_*`) hold
# no person's data; `ticket_events`, `ticket_orders` and `ticket_presence` hold ids and states.
# Analytics snapshots on disk hold pseudonymous ids only and are pruned after each refresh.

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
